//! The catalog as a whole: what two providers may not share.

use super::*;

/// A user's file in a fresh (owner-only) directory.
fn dir_with(file: &str, text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(file), text).unwrap();
    dir
}

fn message(e: Error) -> String {
    match e {
        Error::ProviderFile { path, message } => format!("{path}: {message}"),
        other => panic!("not a provider-file error: {other:?}"),
    }
}

#[test]
fn the_line_scan_finds_each_built_in_s_secret_prefix() {
    for (file, text) in BUILTIN {
        let parsed = parse_builtin(file, text).unwrap();
        assert_eq!(builtin_prefix(text), parsed.secret_prefix, "{file}");
    }
}

#[test]
fn two_providers_may_not_share_secrets() {
    // Renamed, on a staging server, but with production's secret names: its refresh would
    // send production's refresh token and client secret to the staging server.
    let dir = dir_with(
        "staging.toml",
        "extends = \"jobber\"\nname = \"jobber-staging\"\nsecret_prefix = \"JOBBER\"\n\
         token_url = \"https://staging.example/token\"\n\
         authorization_url = \"https://staging.example/authorize\"\n",
    );
    let e = message(Catalog::load(Some(dir.path()), &[]).unwrap_err());
    assert!(e.contains("staging.toml: key `secret_prefix`"), "{e}");
    assert!(e.contains("`JOBBER` is also provider `jobber`'s"), "{e}");
    assert!(e.contains("give `jobber-staging` its own"), "{e}");
    // Every command, not only those that load the whole catalog.
    for name in ["jobber-staging", "jobber", "github"] {
        let e = message(Catalog::find(Some(dir.path()), &[], name).unwrap_err());
        assert!(
            e.contains("`JOBBER` is also provider `jobber`'s"),
            "{name}: {e}"
        );
    }
    // A longer prefix that names one of jobber's secrets: JOBBER_REFRESH_TOKEN_EXPIRES_AT
    // would be jobber's refresh-token end and this one's access-token expiry.
    let dir = dir_with(
        "jr.toml",
        "extends = \"jobber\"\nname = \"jr\"\nsecret_prefix = \"JOBBER_REFRESH\"\n",
    );
    let e = message(Catalog::load(Some(dir.path()), &[]).unwrap_err());
    assert!(
        e.contains("both name JOBBER_REFRESH_TOKEN_EXPIRES_AT"),
        "{e}"
    );
    // The same file replacing the preset (its name) shares with no one.
    let dir = dir_with(
        "jobber.toml",
        "extends = \"jobber\"\nscopes = [\"read_clients\"]\n",
    );
    Catalog::load(Some(dir.path()), &[]).unwrap();
    Catalog::find(Some(dir.path()), &[], "github").unwrap();
}

#[test]
fn a_git_host_belongs_to_one_provider() {
    let dir = dir_with(
        "corp.toml",
        "extends = \"github\"\nname = \"corp\"\nsecret_prefix = \"CORP\"\n\
         git_hosts = [\"GitHub.com\"]\n",
    );
    let e = message(Catalog::load(Some(dir.path()), &[]).unwrap_err());
    assert!(e.contains("corp.toml: key `git_hosts`"), "{e}");
    assert!(
        e.contains("`github.com` is also provider `github`'s"),
        "{e}"
    );
}

#[test]
fn a_preset_moved_to_another_server_keeps_none_of_its_git_hosts() {
    // Self-managed GitLab: the token of gitlab.corp.example must never go to gitlab.com.
    let dir = dir_with(
        "corp-gitlab.toml",
        "extends = \"gitlab\"\nname = \"corp-gitlab\"\nsecret_prefix = \"CORP_GITLAB\"\n\
         token_url = \"https://gitlab.corp.example/oauth/token\"\n\
         authorization_url = \"https://gitlab.corp.example/oauth/authorize\"\n",
    );
    let catalog = Catalog::load(Some(dir.path()), &[]).unwrap();
    let corp = catalog.get("corp-gitlab").unwrap();
    assert!(corp.git_hosts.is_empty(), "{:?}", corp.git_hosts);
    assert_eq!(corp.git_username, None);
    assert_eq!(
        corp.limitations, None,
        "the preset's text is about gitlab.com"
    );
    assert_eq!(catalog.get("gitlab").unwrap().git_hosts, ["gitlab.com"]);
    // Named again, they are the file's own.
    let dir = dir_with(
        "corp-gitlab.toml",
        "extends = \"gitlab\"\nname = \"corp-gitlab\"\nsecret_prefix = \"CORP_GITLAB\"\n\
         token_url = \"https://gitlab.corp.example/oauth/token\"\n\
         authorization_url = \"https://gitlab.corp.example/oauth/authorize\"\n\
         git_hosts = [\"gitlab.corp.example\"]\n",
    );
    let catalog = Catalog::load(Some(dir.path()), &[]).unwrap();
    assert_eq!(
        catalog.get("corp-gitlab").unwrap().git_hosts,
        ["gitlab.corp.example"]
    );
}

#[test]
fn a_bad_value_in_a_file_that_extends_a_preset_is_named_with_its_line() {
    let cases = [
        ("pkce = \"yes\"", "line 2: key `pkce`: "),
        (
            "refresh_token_lifetime = -5",
            "line 2: key `refresh_token_lifetime`: ",
        ),
        (
            "refresh_token_lifetime_from = \"later\"",
            "line 2: key `refresh_token_lifetime_from`: ",
        ),
        ("[check]\nmethod = 5", "line 2: key `check`: "),
    ];
    for (bad, expected) in cases {
        let text = format!("extends = \"jobber\"\n{bad}\n");
        let e = message(Provider::parse(&text, "f.toml").unwrap_err());
        assert!(e.starts_with(&format!("f.toml: {expected}")), "{bad}: {e}");
    }
}
