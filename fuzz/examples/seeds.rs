//! Writes the seed corpus (`seeds/ops`, `seeds/faults`, `seeds/decode`) and the dictionary
//! (`ops.dict`). Run from `fuzz/`: `cargo run --example seeds`. The output is committed; run
//! this again after changing `src/seeds.rs` or the input format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use authdb::prelude::*;
use authdb::{AuthDb, EmailProvider, EncryptionKey, NewAccount, NewAuthenticator, NewUser};
use authdb_fuzz::faults::Disk;
use authdb_fuzz::input::{encode, rust};
use authdb_fuzz::model::Op;
use authdb_fuzz::seeds;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) {
    if dir.exists() {
        std::fs::remove_dir_all(dir).expect("remove old seeds");
    }
    std::fs::create_dir_all(dir).expect("create seed directory");
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}

/// Real stored records, read back from a database built through the public API (the ids,
/// session token hashes and argon2 salt are random: these files change on every run).
fn record_seeds() -> Vec<(String, Vec<u8>)> {
    let disk = Disk::new(Vec::new(), None);
    {
        let clock = std::sync::Arc::new(authdb::ManualClock::new(
            chrono::DateTime::from_timestamp(1_893_499_200, 0).expect("valid time"),
        ));
        let db = AuthDb::builder()
            .clock(clock)
            .password_params(authdb_fuzz::fast_passwords())
            .encryption_key(EncryptionKey::from_bytes([7; 32]))
            .open_backend(disk.clone())
            .expect("open");
        let mut extra = authdb::Extra::new();
        extra.insert("role".into(), "admin".into());
        let user = db
            .create_user(&NewUser {
                name: Some("Ada".into()),
                email: Some(" Ada@Example.COM".into()),
                image: Some("https://img.example/1.png".into()),
                email_verified: Some(chrono::DateTime::UNIX_EPOCH),
                extra: extra.clone(),
            })
            .expect("create_user");
        db.create_user(&NewUser::default()).expect("create_user");
        db.link_account(
            &user.id,
            &NewAccount {
                provider_type: "oauth".into(),
                provider_id: "github".into(),
                provider_account_id: "1234".into(),
                refresh_token: Some("refresh-1".into()),
                access_token: Some("access-1".into()),
                access_token_expires: Some(chrono::DateTime::UNIX_EPOCH),
                token_type: Some("bearer".into()),
                scope: Some("read:user".into()),
                id_token: Some("eyJ.id.sig".into()),
                session_state: Some("state".into()),
                extra,
            },
        )
        .expect("link_account");
        db.link_account(
            &user.id,
            &NewAccount {
                provider_type: "oidc".into(),
                provider_id: "google".into(),
                provider_account_id: "5678".into(),
                ..NewAccount::default()
            },
        )
        .expect("link_account");
        db.create_authenticator(&NewAuthenticator {
            credential_id: "cred-A".into(),
            user_id: user.id,
            provider_account_id: "5678".into(),
            credential_public_key: "pQECAyYgASFYIBx".into(),
            counter: 7,
            credential_device_type: "multiDevice".into(),
            credential_backed_up: true,
            transports: Some("internal,hybrid".into()),
        })
        .expect("create_authenticator");
        db.set_password(&user.id, "correct horse")
            .expect("set_password");
        // After the password: a password change ends the user's sessions.
        db.create_session(&user.id).expect("create_session");
        let provider = EmailProvider::new("email", |_| Ok(()));
        db.create_verification_request("ada@example.com", "https://x", "t1", "s", &provider)
            .expect("create_verification_request");
    }
    let db = redb::Builder::new()
        .create_with_backend(Disk::new(disk.synced(), None))
        .expect("open with redb");
    let rtx = db.begin_read().expect("begin_read");
    let mut out = Vec::new();
    let mut dump = |selector: u8, name: &str, values: Vec<Vec<u8>>| {
        for (i, v) in values.into_iter().enumerate() {
            let mut bytes = vec![selector];
            bytes.extend(v);
            out.push((format!("record-{name}-{i}"), bytes));
        }
    };
    let id16 = |name: &'static str| -> Vec<Vec<u8>> {
        let t = rtx
            .open_table(TableDefinition::<[u8; 16], &[u8]>::new(name))
            .expect("open table");
        t.iter()
            .expect("iter")
            .map(|e| e.expect("entry").1.value().to_vec())
            .collect()
    };
    let hash32 = |name: &'static str| -> Vec<Vec<u8>> {
        let t = rtx
            .open_table(TableDefinition::<[u8; 32], &[u8]>::new(name))
            .expect("open table");
        t.iter()
            .expect("iter")
            .map(|e| e.expect("entry").1.value().to_vec())
            .collect()
    };
    // Session records are the entries of `sessions:v2` whose key starts with `r`.
    let sessions = {
        let t = rtx
            .open_table(TableDefinition::<&[u8], &[u8]>::new("sessions:v2"))
            .expect("open table");
        t.iter()
            .expect("iter")
            .map(|e| e.expect("entry"))
            .filter(|(k, _)| k.value().first() == Some(&b'r'))
            .map(|(_, v)| v.value().to_vec())
            .collect()
    };
    let by_str = |name: &'static str| -> Vec<Vec<u8>> {
        let t = rtx
            .open_table(TableDefinition::<&str, &[u8]>::new(name))
            .expect("open table");
        t.iter()
            .expect("iter")
            .map(|e| e.expect("entry").1.value().to_vec())
            .collect()
    };
    dump(0, "user", id16("users"));
    dump(1, "account", id16("accounts"));
    dump(2, "session", sessions);
    dump(3, "verification", hash32("verification_requests"));
    dump(4, "credential", id16("credentials"));
    dump(5, "authenticator", by_str("authenticators"));
    out
}

fn decode_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = record_seeds();
    let text = |sel: u8, s: &str| {
        let mut b = vec![sel];
        b.extend_from_slice(s.as_bytes());
        b
    };
    for (i, s) in [
        "0190b6a2-7c3e-7def-8a12-3456789abcde",
        "{0190B6A2-7C3E-7DEF-8A12-3456789ABCDE}",
        "urn:uuid:0190b6a2-7c3e-7def-8a12-3456789abcde",
        "0190b6a27c3e7def8a123456789abcde",
    ]
    .iter()
    .enumerate()
    {
        out.push((format!("id-{i}"), text(6, s)));
    }
    for (i, s) in [
        " Ada@Example.COM\t",
        "İSTANBUL@ÖRNEK.TR",
        "ΟΔΥΣΣΕΥΣ@x.gr",
        "\u{3000}a@x\u{85}",
        "\u{FF21}\u{FF20}\u{212A}.io",
        "a\u{200B}@x.io",
    ]
    .iter()
    .enumerate()
    {
        out.push((format!("email-{i}"), text(7, s)));
    }
    out
}

/// Dictionary entries: the tag bytes of every operation, and one whole operation of each
/// kind (the first of its kind in the seeds, where every kind appears).
fn dictionary() -> String {
    let mut d = String::from(
        "# authdb fuzz dictionary (written by `cargo run --example seeds`): the encoded tag of\n\
         # every operation and one whole operation of each kind, for the `ops` and `faults`\n\
         # targets.\n",
    );
    let mut first: BTreeMap<Vec<u8>, (String, Vec<u8>)> = BTreeMap::new();
    let mut todo: Vec<Op> = seeds::ops_seeds()
        .into_iter()
        .flat_map(|c| c.0.ops)
        .collect();
    todo.reverse();
    while let Some(op) = todo.pop() {
        if let Op::Txn { ops, .. } = &op {
            todo.extend(ops.iter().rev().cloned());
        }
        let bytes = encode(&op);
        let name: String = rust(&op)["Op::".len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric())
            .collect();
        first.entry(bytes[..4].to_vec()).or_insert((name, bytes));
    }
    let esc = |b: &[u8]| {
        b.iter().fold(String::new(), |mut s, x| {
            let _ = write!(s, "\\x{x:02x}");
            s
        })
    };
    for (tag, (name, bytes)) in first {
        let _ = writeln!(d, "tag_{name}=\"{}\"", esc(&tag));
        let _ = writeln!(d, "op_{name}=\"{}\"", esc(&bytes));
    }
    d
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ops: Vec<(String, Vec<u8>)> = seeds::ops_seeds()
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("seed-{i:02}"), c.encode()))
        .collect();
    let faults: Vec<(String, Vec<u8>)> = seeds::fault_seeds()
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("seed-{i:02}"), c.encode()))
        .collect();
    write_dir(&root.join("seeds/ops"), &ops);
    write_dir(&root.join("seeds/faults"), &faults);
    write_dir(&root.join("seeds/decode"), &decode_seeds());
    std::fs::write(root.join("ops.dict"), dictionary()).expect("write ops.dict");
    println!(
        "wrote {} ops, {} faults and {} decode seeds, and ops.dict",
        ops.len(),
        faults.len(),
        decode_seeds().len()
    );
}
