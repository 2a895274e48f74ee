//! The KV v2 answers, as a real OpenBao 2.7.2 dev server gave them (tests/data/vault/*.txt:
//! the status on the first line, then the body).

use super::*;

fn recorded(name: &str) -> (u16, Vec<u8>) {
    let path = format!("{}/tests/data/vault/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (status, body) = text.split_once('\n').unwrap_or((&text, ""));
    (status.trim().parse().unwrap(), body.as_bytes().to_vec())
}

fn read(name: &str) -> Result<(Secrets, u64)> {
    let (status, body) = recorded(name);
    read_answer("secret", status, &body)
}

fn write(name: &str) -> Written {
    let (status, body) = recorded(name);
    write_answer("secret", status, &body)
}

#[test]
fn a_read_gives_the_values_and_the_version_to_compare_against() {
    let (data, version) = read("read-ok").unwrap();
    assert_eq!(version, 1);
    assert_eq!(data["JOBBER_ACCESS_TOKEN"].expose_secret(), "a1");
    assert_eq!(data.len(), 2);
    // Absent: version 0, which a check-and-set takes as "create only".
    let (data, version) = read("read-absent").unwrap();
    assert!(data.is_empty() && version == 0);
    // Deleted: empty, but at its version.
    let (data, version) = read("read-deleted").unwrap();
    assert!(data.is_empty() && version == 1);
}

#[test]
fn a_404_that_says_why_is_not_an_empty_secret() {
    for name in ["read-no-mount", "read-no-namespace"] {
        let e = read(name).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Vault {
                    status: 404,
                    kind: DopplerFailure::NotFound,
                    ..
                }
            ),
            "{name}: {e:?}"
        );
    }
    let e = read("read-no-namespace").unwrap_err();
    assert!(e.hint().contains("VAULT_NAMESPACE"), "{}", e.hint());
}

#[test]
fn kv_version_1_is_refused_on_read_and_on_write() {
    for e in [
        read("read-kv1").unwrap_err(),
        match write("write-kv1") {
            Written::Refused(e) => e,
            other => panic!("{other:?}"),
        },
    ] {
        assert!(
            matches!(&e, Error::VaultMount { mount, .. } if mount == "secret"),
            "{e:?}"
        );
        assert!(e.to_string().contains("KV version 1"), "{e}");
        assert!(e.hint().contains("enable-versioning"), "{}", e.hint());
    }
}

#[test]
fn a_write_is_written_moved_refused_or_lost() {
    assert!(matches!(write("write-ok"), Written::Done(Cas::Written(2))));
    assert!(matches!(write("write-moved"), Written::Done(Cas::Moved)));
    match write("write-denied") {
        Written::Refused(Error::Vault {
            status: 403,
            kind: DopplerFailure::ReadOnly,
            message,
        }) => {
            assert_eq!(message, "permission denied")
        }
        other => panic!("{other:?}"),
    }
    // A sealed server applied nothing: a refusal, not a lost answer.
    match write("sealed-read") {
        Written::Refused(e) => assert!(e.hint().contains("unseal"), "{}", e.hint()),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        write_answer("secret", 502, b"{}"),
        Written::Lost(_)
    ));
}

#[test]
fn refusals_of_reads_are_classified_with_their_message() {
    let e = read("read-denied").unwrap_err();
    assert!(
        matches!(
            e,
            Error::Vault {
                status: 403,
                kind: DopplerFailure::Forbidden,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.hint().contains("capabilities"), "{}", e.hint());
    let e = read("sealed-read").unwrap_err();
    assert!(
        matches!(
            e,
            Error::Vault {
                status: 503,
                kind: DopplerFailure::Server,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn the_doctor_answers_parse() {
    let (_, body) = recorded("lookup-self");
    let info = serde_json::from_slice::<Envelope<TokenInfo>>(&body)
        .unwrap()
        .data
        .unwrap();
    assert_eq!(info.policies, ["default", "ro"]);
    assert!(info.ttl > 0);
    for (name, v2) in [("mount-kv2", true), ("mount-kv1", false)] {
        let (_, body) = recorded(name);
        assert_eq!(mount_is_kv_v2(&body).is_ok(), v2, "{name}");
    }
}
