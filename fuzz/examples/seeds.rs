//! Writes the seed corpus (`seeds/ops`, `seeds/faults`, `seeds/decode`) and the dictionary
//! (`ops.dict`). Run from `fuzz/`: `cargo run --example seeds`. The output is committed; run
//! this again after changing `src/seeds.rs` or the input format.

use std::fmt::Write as _;
use std::path::Path;

use authdb::{Adapter, AuthDb, EmailProvider, EncryptionKey, NewAccount, NewUser};
use authdb_fuzz::faults::Disk;
use authdb_fuzz::input::{FChange, FuzzCase, FuzzOp};
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
        let user = db
            .create_user(&NewUser {
                name: Some("Ada".into()),
                email: Some(" Ada@Example.COM".into()),
                image: Some("https://img.example/1.png".into()),
                email_verified: Some(chrono::DateTime::UNIX_EPOCH),
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
            },
        )
        .expect("link_account");
        db.link_account(
            &user.id,
            &NewAccount {
                provider_type: "oidc".into(),
                provider_id: "google".into(),
                provider_account_id: "5678".into(),
                refresh_token: None,
                access_token: None,
                access_token_expires: None,
            },
        )
        .expect("link_account");
        db.create_session(&user.id).expect("create_session");
        db.set_password(&user.id, "correct horse")
            .expect("set_password");
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
    dump(0, "user", id16("users"));
    dump(1, "account", id16("accounts"));
    dump(2, "session", hash32("sessions"));
    dump(3, "verification", hash32("verification_requests"));
    dump(4, "credential", id16("credentials"));
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
        out.push((format!("id-{i}"), text(5, s)));
    }
    for (i, s) in [
        " Ada@Example.COM\t",
        "İSTANBUL@ÖRNEK.TR",
        "ΟΔΥΣΣΕΥΣ@x.gr",
        "\u{3000}a@x\u{85}",
    ]
    .iter()
    .enumerate()
    {
        out.push((format!("email-{i}"), text(6, s)));
    }
    out
}

/// Dictionary entries: the tag bytes of every operation, and whole common operations.
fn dictionary() -> String {
    let mut d = String::from(
        "# authdb fuzz dictionary (written by `cargo run --example seeds`): the encoded tag of\n\
         # every operation and a few whole operations, for the `ops` and `faults` targets.\n",
    );
    let sample = [
        FuzzOp::CreateUser {
            email: Some(0),
            name: None,
            verified: None,
        },
        FuzzOp::GetUser { user: 0 },
        FuzzOp::GetUserByEmail { email: 1 },
        FuzzOp::GetUserByAccount {
            provider: 0,
            account: 0,
        },
        FuzzOp::GetUserByCredentials {
            email: 0,
            password: 0,
        },
        FuzzOp::UpdateUser {
            user: 0,
            email: FChange::Set(3),
            name: FChange::Keep,
            image: FChange::Keep,
            verified: FChange::Keep,
        },
        FuzzOp::DeleteUser { user: 0 },
        FuzzOp::SetPassword {
            user: 0,
            password: 0,
        },
        FuzzOp::LinkAccount {
            user: 0,
            provider: 0,
            account: 0,
            provider_type: 0,
            refresh: Some(0),
            access: Some(0),
            expires: None,
        },
        FuzzOp::UnlinkAccount {
            user: 0,
            provider: 0,
            account: 0,
        },
        FuzzOp::CreateSession { user: 0 },
        FuzzOp::GetSession { session: 0 },
        FuzzOp::UpdateSession {
            session: 0,
            force: false,
            stale: false,
        },
        FuzzOp::DeleteSession { session: 0 },
        FuzzOp::ListSessions { user: 0 },
        FuzzOp::DeleteSessions { user: 0 },
        FuzzOp::DeleteSessionById {
            user: 0,
            session: 0,
        },
        FuzzOp::CreateVerification {
            identifier: 0,
            token: 0,
            secret: 0,
            send_ok: true,
            max_age: 0,
        },
        FuzzOp::GetVerification {
            identifier: 1,
            token: 1,
            secret: 1,
        },
        FuzzOp::DeleteVerification {
            identifier: 0,
            token: 0,
            secret: 0,
        },
        FuzzOp::UseVerification {
            identifier: 0,
            token: 0,
            secret: 0,
        },
        FuzzOp::Advance { step: 4 },
        FuzzOp::Purge,
        FuzzOp::Txn {
            len: 3,
            commit: true,
        },
        FuzzOp::Reopen,
    ];
    for op in sample {
        let bytes = FuzzCase {
            settings: 0,
            ops: vec![op],
        }
        .encode();
        let name = format!("{op:?}");
        let name: String = name.chars().take_while(|c| c.is_alphanumeric()).collect();
        let esc = |b: &[u8]| {
            b.iter().fold(String::new(), |mut s, x| {
                let _ = write!(s, "\\x{x:02x}");
                s
            })
        };
        let _ = writeln!(d, "tag_{name}=\"{}\"", esc(&bytes[1..5]));
        let _ = writeln!(d, "op_{name}=\"{}\"", esc(&bytes[1..]));
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
