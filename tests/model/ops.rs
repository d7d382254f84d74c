//! The operations of the model-based test, as plain data.
//!
//! Every field is a small integer that the driver resolves against a small domain (the
//! constants below) or against what was handed out so far (users, session tokens), always
//! modulo the domain's size. So any value of these types is a valid operation: proptest
//! strategies (see `strategy.rs`), a byte decoder ([`decode`]) or a later
//! `#[derive(arbitrary::Arbitrary)]` can all produce them. No closures, no references.

/// Emails (and verification identifiers). Collisions are the point: `a@x.io` and ` A@x.io`
/// are one address after trimming and lowercasing, and so are `b@x.io` and `B@X.IO `. The
/// last entry is white space only: invalid for writes, `None` for lookups.
pub const EMAILS: [&str; 6] = ["a@x.io", " A@x.io", "b@x.io", "B@X.IO ", "c@x.io", "   "];

/// Display names (the index picks one; `name` fields are optional on top of that).
pub const NAMES: [&str; 3] = ["Ada", "Bob", "ada"];

/// Avatar URLs.
pub const IMAGES: [&str; 2] = ["https://img.example/1.png", "https://img.example/2.png"];

/// OAuth provider ids.
pub const PROVIDERS: [&str; 2] = ["github", "google"];

/// Provider account ids.
pub const PROVIDER_ACCOUNT_IDS: [&str; 3] = ["1", "2", "3"];

/// Provider types; the empty one is invalid input.
pub const PROVIDER_TYPES: [&str; 3] = ["oauth", "oidc", ""];

/// OAuth refresh tokens.
pub const REFRESH_TOKENS: [&str; 2] = ["refresh-1", "refresh-2"];

/// OAuth access tokens.
pub const ACCESS_TOKENS: [&str; 2] = ["access-1", "access-2"];

/// Passwords: two good ones, the empty one (invalid for `set_password`, merely wrong for a
/// sign-in) and one byte over the 1 KiB limit (invalid everywhere).
pub const PASSWORD_COUNT: u8 = 4;

/// The password with this index.
pub fn password(ix: u8) -> String {
    match ix % PASSWORD_COUNT {
        0 => "correct horse".to_owned(),
        1 => "battery staple".to_owned(),
        2 => String::new(),
        _ => "p".repeat(1025),
    }
}

/// Raw verification tokens. With [`SECRETS`], `"t1" + "xs"` and `"t1x" + "s"` are the same
/// string, so two different (token, secret) pairs share one hash: NextAuth's hash has no
/// separator, and the store must treat them as the same link.
pub const TOKENS: [&str; 3] = ["t1", "t1x", "t2"];

/// Verification secrets.
pub const SECRETS: [&str; 2] = ["xs", "s"];

/// The sign-in URL mailed with a link.
pub const URL: &str = "https://app.example/api/auth/callback/email";

/// `user` and `session` indices from this one up pick among everything ever handed out.
pub const ALL_FROM: u8 = 128;

/// `user` and `session` indices from this one up mean "an id / a token that never existed".
pub const BOGUS_FROM: u8 = 224;

/// A session token never handed out (any string is a valid lookup).
pub const BOGUS_SESSION_TOKEN: &str = "not-a-session-token";

/// How far the clock moves.
pub const STEPS: [Step; 6] = [
    Step::Zero,
    Step::Micro,
    Step::Hour,
    Step::Hours23,
    Step::Hours25,
    Step::Days31,
];

/// A clock advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Does not move (so that several rows get the same timestamp).
    Zero,
    /// One microsecond: the smallest stored difference; crosses `now > expires` exactly.
    Micro,
    /// One hour.
    Hour,
    /// 23 hours: with one `Hour`, exactly the default update age.
    Hours23,
    /// 25 hours: past the default update age and the default link lifetime.
    Hours25,
    /// 31 days: past the default session lifetime.
    Days31,
}

impl Step {
    /// The advance in microseconds.
    pub fn micros(self) -> i64 {
        const HOUR: i64 = 3_600_000_000;
        match self {
            Step::Zero => 0,
            Step::Micro => 1,
            Step::Hour => HOUR,
            Step::Hours23 => 23 * HOUR,
            Step::Hours25 => 25 * HOUR,
            Step::Days31 => 31 * 24 * HOUR,
        }
    }
}

/// Settings of a run: session max age and update age (microseconds), and whether the store
/// has an encryption key for OAuth tokens.
pub const SETTINGS: [(i64, i64, bool); 4] = [
    // NextAuth's defaults: 30 days, 24 hours.
    (30 * 24 * 3_600_000_000, 24 * 3_600_000_000, true),
    // Short sessions extended on every update (update age zero).
    (2 * 3_600_000_000, 0, true),
    // Update age above max age: never due before expiry.
    (3_600_000_000, 2 * 3_600_000_000, true),
    // The defaults without an encryption key: OAuth tokens cannot be stored.
    (30 * 24 * 3_600_000_000, 24 * 3_600_000_000, false),
];

/// Link lifetimes of the email provider, in microseconds (the default 24 h, and 1 h).
pub const LINK_MAX_AGES: [i64; 2] = [24 * 3_600_000_000, 3_600_000_000];

/// A change of one field in `update_user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Pass the currently stored value back.
    Keep,
    /// Set it to `None`.
    Clear,
    /// Set it to the domain value with this index.
    Set(u8),
}

/// One operation.
///
/// `user` fields pick a user, newest first, modulo the number of candidates: below
/// [`ALL_FROM`] among the users stored now; from [`ALL_FROM`] among every user created so far
/// (deleted ones, and ones created in dropped transactions, included); from [`BOGUS_FROM`]
/// (or with no candidate) the id that never existed. `session` fields pick a session token
/// the same way (stored sessions, every token handed out, a bogus token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `create_user` with an optional email, name and `email_verified` (seconds after the
    /// start, plus a sub-microsecond part that must be truncated).
    CreateUser {
        email: Option<u8>,
        name: Option<u8>,
        verified: Option<u8>,
    },
    /// `get_user`.
    GetUser { user: u8 },
    /// `get_user_by_email`.
    GetUserByEmail { email: u8 },
    /// `get_user_by_provider_account_id`.
    GetUserByAccount { provider: u8, account: u8 },
    /// `get_user_by_credentials`.
    GetUserByCredentials { email: u8, password: u8 },
    /// `update_user` from the stored user with some fields changed (and garbage timestamps).
    UpdateUser {
        user: u8,
        email: Change,
        name: Change,
        image: Change,
        verified: Change,
    },
    /// `delete_user`.
    DeleteUser { user: u8 },
    /// `set_password`.
    SetPassword { user: u8, password: u8 },
    /// `link_account` (`expires` seconds after the start for `access_token_expires`).
    LinkAccount {
        user: u8,
        provider: u8,
        account: u8,
        provider_type: u8,
        refresh: Option<u8>,
        access: Option<u8>,
        expires: Option<u8>,
    },
    /// `unlink_account`.
    UnlinkAccount { user: u8, provider: u8, account: u8 },
    /// `create_session`.
    CreateSession { user: u8 },
    /// `get_session`.
    GetSession { session: u8 },
    /// `update_session`; `stale` passes a copy of the session with wrong fields besides the
    /// token (the store must work from the stored session).
    UpdateSession {
        session: u8,
        force: bool,
        stale: bool,
    },
    /// `delete_session`.
    DeleteSession { session: u8 },
    /// `list_sessions`.
    ListSessions { user: u8 },
    /// `delete_sessions`.
    DeleteSessions { user: u8 },
    /// `delete_session_by_id` with the id of a handed-out session and some user.
    DeleteSessionById { user: u8, session: u8 },
    /// `create_verification_request`; the sender fails unless `send_ok`.
    CreateVerification {
        identifier: u8,
        token: u8,
        secret: u8,
        send_ok: bool,
        max_age: u8,
    },
    /// `get_verification_request`.
    GetVerification {
        identifier: u8,
        token: u8,
        secret: u8,
    },
    /// `delete_verification_request`.
    DeleteVerification {
        identifier: u8,
        token: u8,
        secret: u8,
    },
    /// `use_verification_request` (single use).
    UseVerification {
        identifier: u8,
        token: u8,
        secret: u8,
    },
    /// Moves the clock by `STEPS[step % len]`.
    Advance { step: u8 },
    /// `purge_expired` (not available inside a transaction: skipped there).
    Purge,
    /// Several operations in one write transaction, committed or dropped. Nested `Txn`,
    /// `Purge` and `Reopen` are skipped inside. The way it ends also varies with the number
    /// of operations: even → `begin_write` + `commit()` / drop, odd → `AuthDb::write` with a
    /// closure returning `Ok` / `Err`.
    Txn { ops: Vec<Op>, commit: bool },
    /// Drops the `AuthDb` and opens the same file again.
    Reopen,
}

impl Op {
    /// The operation's name, for statistics.
    pub fn name(&self) -> &'static str {
        match self {
            Op::CreateUser { .. } => "CreateUser",
            Op::GetUser { .. } => "GetUser",
            Op::GetUserByEmail { .. } => "GetUserByEmail",
            Op::GetUserByAccount { .. } => "GetUserByAccount",
            Op::GetUserByCredentials { .. } => "GetUserByCredentials",
            Op::UpdateUser { .. } => "UpdateUser",
            Op::DeleteUser { .. } => "DeleteUser",
            Op::SetPassword { .. } => "SetPassword",
            Op::LinkAccount { .. } => "LinkAccount",
            Op::UnlinkAccount { .. } => "UnlinkAccount",
            Op::CreateSession { .. } => "CreateSession",
            Op::GetSession { .. } => "GetSession",
            Op::UpdateSession { .. } => "UpdateSession",
            Op::DeleteSession { .. } => "DeleteSession",
            Op::ListSessions { .. } => "ListSessions",
            Op::DeleteSessions { .. } => "DeleteSessions",
            Op::DeleteSessionById { .. } => "DeleteSessionById",
            Op::CreateVerification { .. } => "CreateVerification",
            Op::GetVerification { .. } => "GetVerification",
            Op::DeleteVerification { .. } => "DeleteVerification",
            Op::UseVerification { .. } => "UseVerification",
            Op::Advance { .. } => "Advance",
            Op::Purge => "Purge",
            Op::Txn { .. } => "Txn",
            Op::Reopen => "Reopen",
        }
    }
}

/// A whole run: settings and operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Index into [`SETTINGS`].
    pub settings: u8,
    /// The operations, in order.
    pub ops: Vec<Op>,
}

/// Turns arbitrary bytes into a [`Case`] (for a fuzz target that takes raw bytes): each
/// operation takes one tag byte and as many argument bytes as it needs; missing bytes are
/// zero. Every byte string decodes to some case.
pub fn decode(data: &[u8]) -> Case {
    let mut r = Bytes { data, pos: 0 };
    let settings = r.u8();
    let mut ops = Vec::new();
    while !r.done() {
        ops.push(decode_op(&mut r, true));
    }
    Case { settings, ops }
}

struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bytes<'_> {
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    fn opt(&mut self) -> Option<u8> {
        let b = self.u8();
        (b & 0x80 != 0).then_some(b & 0x7f)
    }
    fn change(&mut self) -> Change {
        let b = self.u8();
        match b % 3 {
            0 => Change::Keep,
            1 => Change::Clear,
            _ => Change::Set(b / 3),
        }
    }
}

fn decode_op(r: &mut Bytes<'_>, top: bool) -> Op {
    let tag = r.u8() % if top { 25 } else { 23 };
    match tag {
        0 => Op::CreateUser {
            email: r.opt(),
            name: r.opt(),
            verified: r.opt(),
        },
        1 => Op::GetUser { user: r.u8() },
        2 => Op::GetUserByEmail { email: r.u8() },
        3 => Op::GetUserByAccount {
            provider: r.u8(),
            account: r.u8(),
        },
        4 => Op::GetUserByCredentials {
            email: r.u8(),
            password: r.u8(),
        },
        5 => Op::UpdateUser {
            user: r.u8(),
            email: r.change(),
            name: r.change(),
            image: r.change(),
            verified: r.change(),
        },
        6 => Op::DeleteUser { user: r.u8() },
        7 => Op::SetPassword {
            user: r.u8(),
            password: r.u8(),
        },
        8 => Op::LinkAccount {
            user: r.u8(),
            provider: r.u8(),
            account: r.u8(),
            provider_type: r.u8(),
            refresh: r.opt(),
            access: r.opt(),
            expires: r.opt(),
        },
        9 => Op::UnlinkAccount {
            user: r.u8(),
            provider: r.u8(),
            account: r.u8(),
        },
        10 => Op::CreateSession { user: r.u8() },
        11 => Op::GetSession { session: r.u8() },
        12 => Op::UpdateSession {
            session: r.u8(),
            force: r.bool(),
            stale: r.bool(),
        },
        13 => Op::DeleteSession { session: r.u8() },
        14 => Op::ListSessions { user: r.u8() },
        15 => Op::DeleteSessions { user: r.u8() },
        16 => Op::DeleteSessionById {
            user: r.u8(),
            session: r.u8(),
        },
        17 => Op::CreateVerification {
            identifier: r.u8(),
            token: r.u8(),
            secret: r.u8(),
            send_ok: !r.u8().is_multiple_of(4),
            max_age: r.u8(),
        },
        18 => Op::GetVerification {
            identifier: r.u8(),
            token: r.u8(),
            secret: r.u8(),
        },
        19 => Op::DeleteVerification {
            identifier: r.u8(),
            token: r.u8(),
            secret: r.u8(),
        },
        20 => Op::UseVerification {
            identifier: r.u8(),
            token: r.u8(),
            secret: r.u8(),
        },
        21 => Op::Advance { step: r.u8() },
        22 => Op::Purge,
        23 => {
            let n = r.u8() % 8;
            let commit = r.bool();
            let ops = (0..n).map(|_| decode_op(r, false)).collect();
            Op::Txn { ops, commit }
        }
        _ => Op::Reopen,
    }
}
