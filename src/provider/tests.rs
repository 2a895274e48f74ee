//! Provider files: parsing, validation and the catalog.

use std::path::Path;

use super::catalog::{toml_files_in, BUILTIN};
use super::*;

const MINIMAL: &str = r#"
name = "acme"
display_name = "Acme"
authorization_url = "https://acme.example/authorize"
token_url = "https://acme.example/token"
client_auth = "client_secret_basic"
secret_prefix = "ACME"
"#;

#[test]
fn every_builtin_validates() {
    let catalog = Catalog::load(None, &[]).unwrap();
    for (file, _) in BUILTIN {
        let name = file.trim_end_matches(".toml");
        let p = catalog.get(name).unwrap();
        assert_eq!(p.name, name, "{file}: name must match the file name");
    }
}

#[test]
fn jobber_is_a_confidential_post_client_without_scopes() {
    let catalog = Catalog::load(None, &[]).unwrap();
    let jobber = catalog.get("jobber").unwrap();
    assert_eq!(jobber.client_auth, ClientAuth::ClientSecretPost);
    assert!(jobber.scopes.is_empty());
    assert_eq!(jobber.secret_prefix, "JOBBER");
    assert_eq!(
        jobber.token_url.as_str(),
        "https://api.getjobber.com/api/oauth/token"
    );
}

#[test]
fn defaults_apply() {
    let p = Provider::parse(MINIMAL, "acme.toml").unwrap();
    assert_eq!(p.redirect_host, "localhost");
    assert_eq!(p.redirect_path, "/callback");
    assert_eq!(
        p.ports,
        PortRange {
            first: 3000,
            last: 3010
        }
    );
}

#[test]
fn ports_forms() {
    for (text, first, last) in [
        ("ports = \"4000-4002\"", 4000, 4002),
        ("ports = \"4000\"", 4000, 4000),
        ("ports = 4001", 4001, 4001),
    ] {
        let p = Provider::parse(&format!("{MINIMAL}{text}\n"), "x.toml").unwrap();
        assert_eq!((p.ports.first, p.ports.last), (first, last), "{text}");
    }
    for bad in [
        "ports = \"4002-4000\"",
        "ports = \"0\"",
        "ports = \"x\"",
        "ports = 70000",
    ] {
        assert!(
            Provider::parse(&format!("{MINIMAL}{bad}\n"), "x.toml").is_err(),
            "{bad}"
        );
    }
}

fn error_of(text: &str) -> String {
    Provider::parse(text, "bad.toml").unwrap_err().to_string()
}

#[test]
fn missing_key_is_named() {
    let text = MINIMAL.replace("token_url = \"https://acme.example/token\"\n", "");
    let e = error_of(&text);
    assert!(e.starts_with("bad.toml: "), "{e}");
    assert!(e.contains("missing required key `token_url`"), "{e}");
    // Every missing key at once, so one edit fixes the file.
    let text = text
        .replace("secret_prefix = \"ACME\"\n", "")
        .replace("name = \"acme\"\n", "");
    let e = error_of(&text);
    assert!(
        e.contains("missing required keys `name`, `token_url`, `secret_prefix`"),
        "{e}"
    );
}

#[test]
fn required_keys_are_exactly_the_fields_without_a_default() {
    // A file holding only the required keys parses; without any one of them it does not.
    let only: String = MINIMAL
        .lines()
        .filter(|l| {
            REQUIRED_KEYS
                .iter()
                .any(|k| l.starts_with(&format!("{k} =")))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(Provider::parse(&only, "min.toml").is_ok());
    for key in REQUIRED_KEYS {
        let without: String = only
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(Provider::parse(&without, "min.toml").is_err(), "{key}");
    }
}

#[test]
fn unknown_key_is_named() {
    let e = error_of(&format!("{MINIMAL}tokne_url = \"x\"\n"));
    assert!(e.contains("unknown key `tokne_url`"), "{e}");
    assert!(e.contains("(did you mean `token_url`?)"), "{e}");
    assert!(e.contains("line 8"), "{e}");
}

#[test]
fn a_key_far_from_every_known_one_gets_no_suggestion() {
    let e = error_of(&format!("{MINIMAL}colour = \"x\"\n"));
    assert!(e.contains("unknown key `colour`"), "{e}");
    assert!(!e.contains("did you mean"), "{e}");
}

#[test]
fn http_endpoint_rejected_unless_loopback() {
    let e = error_of(&MINIMAL.replace("https://acme.example/token", "http://acme.example/token"));
    assert!(e.contains("key `token_url`") && e.contains("https"), "{e}");
    for ok in [
        "http://127.0.0.1:9/token",
        "http://localhost:9/token",
        "http://[::1]:9/token",
    ] {
        Provider::parse(&MINIMAL.replace("https://acme.example/token", ok), "x").unwrap();
    }
}

#[test]
fn bad_values_are_named() {
    assert!(error_of(&MINIMAL.replace("\"ACME\"", "\"acme\"")).contains("key `secret_prefix`"));
    assert!(
        error_of(&MINIMAL.replace("client_secret_basic", "magic")).contains("client_auth")
            || error_of(&MINIMAL.replace("client_secret_basic", "magic"))
                .contains("unknown variant")
    );
    assert!(error_of(&format!("{MINIMAL}redirect_host = \"0.0.0.0\"\n"))
        .contains("key `redirect_host`"));
    assert!(
        error_of(&format!("{MINIMAL}[authorization_params]\nstate = \"x\"\n"))
            .contains("authorization_params.state")
    );
}

/// Red team R11: userinfo in an endpoint is refused, and the error never shows the password.
#[test]
fn r11_userinfo_in_an_endpoint_is_refused_without_printing_it() {
    for (from, to) in [
        (
            "https://acme.example/token",
            "https://user:PW-SENTINEL@acme.example/token",
        ),
        (
            "https://acme.example/token",
            "https://acme.example@evil.example/token",
        ),
        (
            "https://acme.example/authorize",
            "https://u@acme.example/authorize",
        ),
    ] {
        let e = error_of(&MINIMAL.replace(from, to));
        assert!(e.contains("must not carry a user name or password"), "{e}");
        assert!(
            !e.contains("PW-SENTINEL") && !e.contains("acme.example@"),
            "{e}"
        );
    }
    let revocation = format!("{MINIMAL}revocation_url = \"https://a:b@acme.example/revoke\"\n");
    assert!(error_of(&revocation).contains("key `revocation_url`"));
}

#[test]
fn every_file_in_providers_is_built_in() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("providers");
    let mut on_disk: Vec<String> = toml_files_in(&dir)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut compiled: Vec<String> = BUILTIN.iter().map(|(f, _)| f.to_string()).collect();
    compiled.sort();
    assert_eq!(on_disk, compiled, "add every providers/*.toml to BUILTIN");
}

#[test]
fn the_issue_providers_are_all_built_in_with_their_quirks() {
    let catalog = Catalog::load(None, &[]).unwrap();
    for name in [
        "jobber",
        "github",
        "google",
        "microsoft",
        "gitlab",
        "slack",
        "atlassian",
        "xero",
        "dropbox",
        "spotify",
        "linear",
        "zoom",
        "box",
        "discord",
        "hubspot",
        "notion",
        "salesforce",
        "quickbooks",
        "twitch",
        "stripe",
    ] {
        let p = catalog.get(name).unwrap();
        assert_eq!(p.source, format!("built-in providers/{name}.toml"));
    }
    let get = |n| catalog.get(n).unwrap();
    assert_eq!(get("jobber").ports, PortRange::parse("3000").unwrap());
    assert_eq!(get("jobber").refresh_token_rotation, Rotation::Yes);
    assert_eq!(get("slack").scope_parameter, "user_scope");
    assert_eq!(get("slack").scope_separator, ",");
    assert_eq!(
        get("slack").token_response_path.as_deref(),
        Some("authed_user")
    );
    assert_eq!(get("linear").scope_separator, ",");
    assert_eq!(get("spotify").redirect_host, "127.0.0.1");
    assert_eq!(
        get("atlassian").token_request_format,
        TokenRequestFormat::Json
    );
    assert_eq!(get("notion").token_request_format, TokenRequestFormat::Json);
    assert_eq!(get("notion").client_auth, ClientAuth::ClientSecretBasic);
    assert!(get("gitlab").refresh_sends_redirect_uri);
    assert_eq!(get("google").authorization_params["access_type"], "offline");
    assert_eq!(
        get("dropbox").authorization_params["token_access_type"],
        "offline"
    );
    assert_eq!(
        get("atlassian").authorization_params["audience"],
        "api.atlassian.com"
    );
    for refused in ["stripe", "quickbooks"] {
        let e = get(refused).ensure_loopback_flow().unwrap_err();
        assert_eq!(e.class(), crate::ExitClass::Configuration, "{refused}");
        assert!(!e.hint().is_empty());
    }
    for p in catalog.iter().filter(|p| p.loopback_unsupported.is_none()) {
        p.ensure_loopback_flow().unwrap();
        assert!(
            p.limitations.is_some(),
            "{}: say what limits a CLI flow",
            p.name
        );
    }
}

#[test]
fn device_endpoints_are_built_in_where_documented_and_must_be_https() {
    let catalog = Catalog::load(None, &[]).unwrap();
    for name in ["github", "google", "microsoft"] {
        let url = catalog.get(name).unwrap().device_authorization_url.as_ref();
        assert!(url.is_some_and(|u| u.scheme() == "https"), "{name}");
    }
    assert!(catalog
        .get("jobber")
        .unwrap()
        .device_authorization_url
        .is_none());
    let e = error_of(&format!(
        "{MINIMAL}device_authorization_url = \"http://acme.example/device\"\n"
    ));
    assert!(e.contains("key `device_authorization_url`"), "{e}");
}

#[test]
fn quirk_keys_parse() {
    let p = Provider::parse(
        &format!(
            "{MINIMAL}scope_parameter = \"user_scope\"\nscope_separator = \",\"\n\
             token_request_format = \"json\"\ntoken_response_path = \"authed_user\"\n\
             refresh_sends_redirect_uri = true\nrefresh_token_rotation = \"optional\"\n\
             limitations = \"one port\"\n\
             [loopback_unsupported]\nreason = \"r\"\nalternative = \"a\"\n\
             [check]\nurl = \"https://acme.example/me\"\nsuccess_field = \"data.me.id\"\nauth_scheme = \"OAuth\"\n"
        ),
        "acme.toml",
    )
    .unwrap();
    assert_eq!(p.scope_parameter, "user_scope");
    assert_eq!(p.token_request_format, TokenRequestFormat::Json);
    assert_eq!(p.refresh_token_rotation, Rotation::Optional);
    assert!(p.refresh_sends_redirect_uri);
    assert_eq!(p.check.as_ref().unwrap().auth_scheme, "OAuth");
    match p.ensure_loopback_flow() {
        Err(Error::NoLoopbackFlow {
            reason,
            alternative,
            ..
        }) => assert_eq!((reason.as_str(), alternative.as_str()), ("r", "a")),
        other => panic!("{other:?}"),
    }
    let defaults = Provider::parse(MINIMAL, "acme.toml").unwrap();
    assert_eq!(defaults.scope_parameter, "scope");
    assert_eq!(defaults.scope_separator, " ");
    assert_eq!(defaults.token_request_format, TokenRequestFormat::Form);
    assert_eq!(defaults.refresh_token_rotation, Rotation::Unknown);
    assert!(!defaults.refresh_sends_redirect_uri);
}

#[test]
fn bad_quirk_values_are_named() {
    for (extra, key) in [
        ("scope_separator = \";\"", "scope_separator"),
        ("scope_parameter = \"state\"", "scope_parameter"),
        ("scope_parameter = \"a b\"", "scope_parameter"),
        (
            "scope_parameter = \"user_scope\"\n[authorization_params]\nuser_scope = \"x\"",
            "authorization_params.user_scope",
        ),
        ("scopes = [\"a,b\"]", "scopes"),
        ("token_response_path = \"a..b\"", "token_response_path"),
        ("token_request_format = \"xml\"", "token_request_format"),
        (
            "refresh_token_rotation = \"maybe\"",
            "refresh_token_rotation",
        ),
        ("limitations = \" \"", "limitations"),
        (
            "[loopback_unsupported]\nreason = \"\"\nalternative = \"a\"",
            "loopback_unsupported",
        ),
        (
            "[check]\nurl = \"https://a.example/\"\n[check.headers]\nAuthorization = \"x\"",
            "check.headers.Authorization",
        ),
        (
            "[check]\nurl = \"https://a.example/\"\nsuccess_field = \"a b\"",
            "check.success_field",
        ),
    ] {
        let e = error_of(&format!("{MINIMAL}{extra}\n"));
        assert!(e.contains(key), "{extra}: {e}");
    }
}

#[test]
fn user_file_overrides_builtin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobber.toml");
    std::fs::write(
        &path,
        MINIMAL
            .replace("\"acme\"", "\"jobber\"")
            .replace("\"Acme\"", "\"My Jobber\""),
    )
    .unwrap();
    let catalog = Catalog::load(Some(dir.path()), &[]).unwrap();
    let p = catalog.get("jobber").unwrap();
    assert_eq!(p.display_name, "My Jobber");
    assert_eq!(p.source, path.display().to_string());
}

#[test]
fn find_parses_one_builtin_and_agrees_with_load() {
    let all = Catalog::load(None, &[]).unwrap();
    for (file, _) in BUILTIN {
        let name = file.trim_end_matches(".toml");
        let one = Catalog::find(None, &[], name).unwrap();
        assert_eq!(one.token_url, all.get(name).unwrap().token_url);
    }
    match Catalog::find(None, &[], "nope") {
        Err(Error::UnknownProvider { known, .. }) => {
            assert!(known.contains(&"jobber".to_string()))
        }
        other => panic!("{other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("x.toml"),
        MINIMAL.replace("\"acme\"", "\"jobber\""),
    )
    .unwrap();
    assert_eq!(
        Catalog::find(Some(dir.path()), &[], "jobber")
            .unwrap()
            .token_url
            .as_str(),
        "https://acme.example/token"
    );
}

#[test]
fn unknown_provider_lists_known_ones() {
    let catalog = Catalog::load(None, &[]).unwrap();
    match catalog.get("nope") {
        Err(Error::UnknownProvider { known, .. }) => {
            assert!(known.contains(&"jobber".to_string()))
        }
        other => panic!("{other:?}"),
    }
}

/// Issue 18: the built-in GitHub and GitLab presets answer git for their hosts.
#[test]
fn github_and_gitlab_carry_their_git_hosts_and_user_names() {
    let catalog = Catalog::load(None, &[]).unwrap();
    let git = |name: &str| {
        let p = catalog.get(name).unwrap();
        (p.git_hosts.clone(), p.git_username.clone())
    };
    assert_eq!(
        git("github"),
        (
            vec!["github.com".to_string()],
            Some("x-access-token".into())
        )
    );
    assert_eq!(
        git("gitlab"),
        (vec!["gitlab.com".to_string()], Some("oauth2".into()))
    );
    assert!(git("jobber").0.is_empty());
    let bad = format!("{MINIMAL}git_hosts = [\"https://github.com/\"]\n");
    assert!(error_of(&bad).contains("key `git_hosts`"));
}

#[test]
fn display_name_defaults_to_the_name() {
    let text = MINIMAL.replace("display_name = \"Acme\"\n", "");
    assert_eq!(
        Provider::parse(&text, "min.toml").unwrap().display_name,
        "acme"
    );
}

#[test]
fn a_refresh_token_lifetime_slides_with_each_refresh_or_runs_from_the_sign_in() {
    let now = 1_000_000;
    let sliding = Provider::parse(
        &format!("{MINIMAL}refresh_token_lifetime = 864000\n"),
        "s.toml",
    )
    .unwrap();
    assert_eq!(
        sliding.refresh_token_expiry(false, now),
        Some(now + 864_000)
    );
    assert_eq!(sliding.refresh_token_expiry(true, now), Some(now + 864_000));
    // Kept alive within half its lifetime (10 days: 5), never once dead.
    assert!(!sliding.keep_alive_due(5 * 86_400 + 1));
    assert!(sliding.keep_alive_due(5 * 86_400));
    assert!(!sliding.keep_alive_due(0));

    let absolute = Provider::parse(
        &format!(
            "{MINIMAL}refresh_token_lifetime = 15552000\n\
             refresh_token_lifetime_from = \"authorization\"\n"
        ),
        "a.toml",
    )
    .unwrap();
    assert_eq!(
        absolute.refresh_token_expiry(false, now),
        Some(now + 15_552_000)
    );
    assert_eq!(
        absolute.refresh_token_expiry(true, now),
        None,
        "stored one stands"
    );
    assert!(!absolute.keep_alive_due(86_400), "a refresh would not help");

    // Unknown lifetime: nothing stored, and no refresh spent on an expiry the provider
    // announces unless the file says a refresh renews it.
    let plain = Provider::parse(MINIMAL, "m.toml").unwrap();
    assert_eq!(plain.refresh_token_expiry(false, now), None);
    assert_eq!(plain.lifetime_from(), None);
    assert!(!plain.keep_alive_due(86_400));
    let renewed = Provider::parse(
        &format!("{MINIMAL}refresh_token_lifetime_from = \"refresh\"\n"),
        "r.toml",
    )
    .unwrap();
    assert!(renewed.keep_alive_due(14 * 86_400));
    assert!(!renewed.keep_alive_due(14 * 86_400 + 1));
    let e = error_of(&format!("{MINIMAL}refresh_token_lifetime = 0\n"));
    assert!(e.contains("at least 1"), "{e}");

    let e = error_of(&format!("{MINIMAL}refresh_token_lifetime_from = \"use\"\n"));
    assert!(e.contains("refresh_token_lifetime_from"), "{e}");
}

#[test]
fn spotify_s_grant_runs_six_months_from_the_sign_in_and_microsoft_s_slides() {
    let catalog = Catalog::load(None, &[]).unwrap();
    let spotify = catalog.get("spotify").unwrap();
    assert_eq!(spotify.refresh_token_lifetime, Some(180 * 86_400));
    assert_eq!(spotify.lifetime_from(), Some(LifetimeFrom::Authorization));
    let microsoft = catalog.get("microsoft").unwrap();
    assert_eq!(microsoft.refresh_token_lifetime, Some(90 * 86_400));
    assert_eq!(microsoft.lifetime_from(), Some(LifetimeFrom::Refresh));
    let github = catalog.get("github").unwrap();
    assert_eq!(
        github.lifetime_from(),
        Some(LifetimeFrom::Refresh),
        "announced, sliding"
    );
}

#[test]
fn a_file_that_extends_a_preset_changes_only_what_it_says() {
    let text = "extends = \"jobber\"\n[check.headers]\nX-JOBBER-GRAPHQL-VERSION = \"2026-07-27\"\n";
    let p = Provider::parse(text, "jobber.toml").unwrap();
    let builtin = Catalog::load(None, &[])
        .unwrap()
        .get("jobber")
        .unwrap()
        .clone();
    assert_eq!(
        p.name, "jobber",
        "keeps the preset's name, so it replaces it"
    );
    let check = p.check.as_ref().unwrap();
    assert_eq!(check.headers["X-JOBBER-GRAPHQL-VERSION"], "2026-07-27");
    assert_eq!(
        check.headers["Content-Type"], "application/json",
        "merged, not replaced"
    );
    assert_eq!(check.url, builtin.check.as_ref().unwrap().url);
    assert_eq!(p.token_url, builtin.token_url);
    assert_eq!(p.ports.to_string(), builtin.ports.to_string());

    // Another name needs other secrets: else one grant would serve (and be refreshed by) two.
    let e = error_of("extends = \"jobber\"\nname = \"jobber-staging\"\n");
    assert!(
        e.contains("key `secret_prefix`") && e.contains("JOBBER_*"),
        "{e}"
    );
    let other = "extends = \"jobber\"\nname = \"jobber-staging\"\n\
                 secret_prefix = \"JOBBER_STAGING\"\npkce = false\n";
    let p = Provider::parse(other, "staging.toml").unwrap();
    assert_eq!((p.name.as_str(), p.pkce), ("jobber-staging", false));
    assert_eq!(p.secret_prefix, "JOBBER_STAGING");
    assert_eq!(
        p.check.as_ref().unwrap().url,
        builtin.check.as_ref().unwrap().url
    );

    // Another token endpoint drops the preset's other endpoints (they would get its tokens).
    let moved = "extends = \"jobber\"\ntoken_url = \"https://staging.example/token\"\n";
    let e = error_of(moved);
    assert!(
        e.contains("key `authorization_url`: a file that extends `jobber`"),
        "{e}"
    );
    let moved = "extends = \"jobber\"\ntoken_url = \"https://staging.example/token\"\n\
                 authorization_url = \"https://staging.example/authorize\"\n";
    let p = Provider::parse(moved, "moved.toml").unwrap();
    assert_eq!(p.token_url.as_str(), "https://staging.example/token");
    assert!(p.check.is_none() && p.api_base_url.is_none() && p.revocation_url.is_none());

    // Header names match whatever their case: the file's replaces the preset's.
    let lower = "extends = \"notion\"\n[token_headers]\nnotion-version = \"2025-09-03\"\n";
    let p = Provider::parse(lower, "n.toml").unwrap();
    assert_eq!(p.token_headers.len(), 1, "{:?}", p.token_headers);
    assert_eq!(p.token_headers["notion-version"], "2025-09-03");

    let e = error_of("extends = \"jobbr\"\n");
    assert!(e.contains("`jobbr` is not a built-in provider"), "{e}");
    let e = error_of("extends = \"jobber\"\ntokne_url = \"https://x.example\"\n");
    assert!(e.contains("unknown key `tokne_url`"), "{e}");
    let e = error_of(
        "extends = \"jobber\"\ntoken_url = \"http://evil.example/t\"\n\
         authorization_url = \"https://evil.example/a\"\n",
    );
    assert!(e.contains("must use https"), "{e}");
}

#[test]
fn a_user_file_extending_a_preset_overrides_it_in_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("jobber.toml"),
        "extends = \"jobber\"\nscopes = [\"read_clients\"]\n",
    )
    .unwrap();
    let p = Catalog::find(Some(dir.path()), &[], "jobber").unwrap();
    assert!(p.overrides_builtin);
    assert_eq!(p.scopes, ["read_clients"]);
    assert_eq!(p.display_name, "Jobber");
}

#[test]
fn token_headers_may_not_replace_what_oauth_pkce_sets() {
    let e = error_of(&format!(
        "{MINIMAL}[token_headers]\nauthorization = \"Basic x\"\n"
    ));
    assert!(e.contains("key `token_headers.authorization`"), "{e}");
    assert!(e.contains("Content-Type"), "{e}");
    let e = error_of(&format!(
        "{MINIMAL}[token_headers]\nX-A = \"1\"\nx-a = \"2\"\n"
    ));
    assert!(e.contains("set twice"), "{e}");
    let e = error_of(&format!("{MINIMAL}[token_headers]\nCookie = \"a=b\"\n"));
    assert!(e.contains("token_headers.Cookie"), "{e}");
    let e = error_of(&format!("{MINIMAL}[token_headers]\nX-Bad = \"a\\nb\"\n"));
    assert!(e.contains("printable ASCII"), "{e}");
    let p = Provider::parse(
        &format!("{MINIMAL}[token_headers]\nNotion-Version = \"2026-03-11\"\n"),
        "n.toml",
    )
    .unwrap();
    assert_eq!(p.token_headers["Notion-Version"], "2026-03-11");
    let notion = Catalog::load(None, &[])
        .unwrap()
        .get("notion")
        .unwrap()
        .clone();
    assert!(!notion.revoke_refresh_token);
    assert!(notion.token_headers.contains_key("Notion-Version"));
}
