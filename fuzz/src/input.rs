//! The fuzz input: a derived `Arbitrary` sequence of operations mapped onto the model's
//! [`Op`](crate::model::Op), and a fault plan.
//!
//! Transactions are flattened (`Txn { len, commit }` takes the next `len % 8` operations), so
//! that every input byte string is a valid sequence and mutations stay local. The inverse,
//! [`encode`], builds seed inputs; [`crate::input`]'s round-trip test keeps it honest.

use std::fmt;

use arbitrary::{Arbitrary, Unstructured};

use crate::faults::{FailMode, Plan};
use crate::model::{Case, Change, Op};

/// The most top-level operations one input runs (transactions count once per operation
/// inside), so that one execution stays fast.
pub const MAX_OPS: usize = 64;

/// The longest transaction.
pub const MAX_TXN: u8 = 8;

/// `update_user`'s per-field change.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FChange {
    Keep,
    Clear,
    Set(u8),
}

/// One operation; the fields are those of [`Op`] (resolved modulo the model's domains).
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuzzOp {
    CreateUser {
        email: Option<u8>,
        name: Option<u8>,
        verified: Option<u8>,
    },
    GetUser {
        user: u8,
    },
    GetUserByEmail {
        email: u8,
    },
    GetUserByAccount {
        provider: u8,
        account: u8,
    },
    GetUserByCredentials {
        email: u8,
        password: u8,
    },
    UpdateUser {
        user: u8,
        email: FChange,
        name: FChange,
        image: FChange,
        verified: FChange,
    },
    DeleteUser {
        user: u8,
    },
    SetPassword {
        user: u8,
        password: u8,
    },
    LinkAccount {
        user: u8,
        provider: u8,
        account: u8,
        provider_type: u8,
        refresh: Option<u8>,
        access: Option<u8>,
        expires: Option<u8>,
    },
    UnlinkAccount {
        user: u8,
        provider: u8,
        account: u8,
    },
    CreateSession {
        user: u8,
    },
    GetSession {
        session: u8,
    },
    UpdateSession {
        session: u8,
        force: bool,
        stale: bool,
    },
    DeleteSession {
        session: u8,
    },
    ListSessions {
        user: u8,
    },
    DeleteSessions {
        user: u8,
    },
    DeleteSessionById {
        user: u8,
        session: u8,
    },
    CreateVerification {
        identifier: u8,
        token: u8,
        secret: u8,
        send_ok: bool,
        max_age: u8,
    },
    GetVerification {
        identifier: u8,
        token: u8,
        secret: u8,
    },
    DeleteVerification {
        identifier: u8,
        token: u8,
        secret: u8,
    },
    UseVerification {
        identifier: u8,
        token: u8,
        secret: u8,
    },
    Advance {
        step: u8,
    },
    Purge,
    /// The next `len % MAX_TXN` operations run in one write transaction.
    Txn {
        len: u8,
        commit: bool,
    },
    Reopen,
}

/// The number of [`FuzzOp`] variants (for [`encode`]).
const FUZZ_OP_VARIANTS: u64 = 25;

impl From<FChange> for Change {
    fn from(c: FChange) -> Self {
        match c {
            FChange::Keep => Change::Keep,
            FChange::Clear => Change::Clear,
            FChange::Set(i) => Change::Set(i),
        }
    }
}

impl FuzzOp {
    /// The model operation (`Txn` becomes an empty transaction; [`to_case`] fills it).
    fn to_op(self) -> Op {
        match self {
            FuzzOp::CreateUser {
                email,
                name,
                verified,
            } => Op::CreateUser {
                email,
                name,
                verified,
            },
            FuzzOp::GetUser { user } => Op::GetUser { user },
            FuzzOp::GetUserByEmail { email } => Op::GetUserByEmail { email },
            FuzzOp::GetUserByAccount { provider, account } => {
                Op::GetUserByAccount { provider, account }
            }
            FuzzOp::GetUserByCredentials { email, password } => {
                Op::GetUserByCredentials { email, password }
            }
            FuzzOp::UpdateUser {
                user,
                email,
                name,
                image,
                verified,
            } => Op::UpdateUser {
                user,
                email: email.into(),
                name: name.into(),
                image: image.into(),
                verified: verified.into(),
            },
            FuzzOp::DeleteUser { user } => Op::DeleteUser { user },
            FuzzOp::SetPassword { user, password } => Op::SetPassword { user, password },
            FuzzOp::LinkAccount {
                user,
                provider,
                account,
                provider_type,
                refresh,
                access,
                expires,
            } => Op::LinkAccount {
                user,
                provider,
                account,
                provider_type,
                refresh,
                access,
                expires,
            },
            FuzzOp::UnlinkAccount {
                user,
                provider,
                account,
            } => Op::UnlinkAccount {
                user,
                provider,
                account,
            },
            FuzzOp::CreateSession { user } => Op::CreateSession { user },
            FuzzOp::GetSession { session } => Op::GetSession { session },
            FuzzOp::UpdateSession {
                session,
                force,
                stale,
            } => Op::UpdateSession {
                session,
                force,
                stale,
            },
            FuzzOp::DeleteSession { session } => Op::DeleteSession { session },
            FuzzOp::ListSessions { user } => Op::ListSessions { user },
            FuzzOp::DeleteSessions { user } => Op::DeleteSessions { user },
            FuzzOp::DeleteSessionById { user, session } => Op::DeleteSessionById { user, session },
            FuzzOp::CreateVerification {
                identifier,
                token,
                secret,
                send_ok,
                max_age,
            } => Op::CreateVerification {
                identifier,
                token,
                secret,
                send_ok,
                max_age,
            },
            FuzzOp::GetVerification {
                identifier,
                token,
                secret,
            } => Op::GetVerification {
                identifier,
                token,
                secret,
            },
            FuzzOp::DeleteVerification {
                identifier,
                token,
                secret,
            } => Op::DeleteVerification {
                identifier,
                token,
                secret,
            },
            FuzzOp::UseVerification {
                identifier,
                token,
                secret,
            } => Op::UseVerification {
                identifier,
                token,
                secret,
            },
            FuzzOp::Advance { step } => Op::Advance { step },
            FuzzOp::Purge => Op::Purge,
            FuzzOp::Txn { commit, .. } => Op::Txn {
                ops: Vec::new(),
                commit,
            },
            FuzzOp::Reopen => Op::Reopen,
        }
    }
}

/// An `ops` input: session settings and a flat operation sequence.
#[derive(Clone, PartialEq, Eq)]
pub struct FuzzCase {
    pub settings: u8,
    pub ops: Vec<FuzzOp>,
}

impl<'a> Arbitrary<'a> for FuzzCase {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let settings = u.arbitrary()?;
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            ops.push(u.arbitrary()?);
        }
        Ok(Self { settings, ops })
    }
}

impl FuzzCase {
    /// The model's case: each `Txn { len, commit }` takes the next `len % MAX_TXN` operations
    /// (a `Txn` among them stays an empty transaction, which the driver skips).
    pub fn to_case(&self) -> Case {
        let mut ops = Vec::new();
        let mut i = 0;
        while let Some(&op) = self.ops.get(i) {
            i += 1;
            let mut op_ = op.to_op();
            if let (FuzzOp::Txn { len, .. }, Op::Txn { ops: inner, .. }) = (op, &mut op_) {
                let end = (i + usize::from(len % MAX_TXN)).min(self.ops.len());
                inner.extend(self.ops[i..end].iter().map(|o| o.to_op()));
                i = end;
            }
            ops.push(op_);
        }
        Case {
            settings: self.settings,
            ops,
        }
    }

    /// The input bytes that decode to this case (the inverse of `Arbitrary`, for seeds).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.settings];
        for op in &self.ops {
            encode_op(*op, &mut out);
        }
        out
    }
}

/// The tag bytes of variant `i` of `n` as `#[derive(Arbitrary)]` reads them: a little-endian
/// `u32` that it maps to `(tag * n) >> 32`.
fn tag(i: u64, n: u64, out: &mut Vec<u8>) {
    let t = u32::try_from((i << 32).div_ceil(n)).expect("variant index in range");
    out.extend_from_slice(&t.to_le_bytes());
}

fn opt(v: Option<u8>, out: &mut Vec<u8>) {
    match v {
        None => out.push(0),
        Some(x) => out.extend_from_slice(&[1, x]),
    }
}

fn change(c: FChange, out: &mut Vec<u8>) {
    match c {
        FChange::Keep => tag(0, 3, out),
        FChange::Clear => tag(1, 3, out),
        FChange::Set(x) => {
            tag(2, 3, out);
            out.push(x);
        }
    }
}

fn encode_op(op: FuzzOp, out: &mut Vec<u8>) {
    let n = FUZZ_OP_VARIANTS;
    match op {
        FuzzOp::CreateUser {
            email,
            name,
            verified,
        } => {
            tag(0, n, out);
            opt(email, out);
            opt(name, out);
            opt(verified, out);
        }
        FuzzOp::GetUser { user } => {
            tag(1, n, out);
            out.push(user);
        }
        FuzzOp::GetUserByEmail { email } => {
            tag(2, n, out);
            out.push(email);
        }
        FuzzOp::GetUserByAccount { provider, account } => {
            tag(3, n, out);
            out.extend_from_slice(&[provider, account]);
        }
        FuzzOp::GetUserByCredentials { email, password } => {
            tag(4, n, out);
            out.extend_from_slice(&[email, password]);
        }
        FuzzOp::UpdateUser {
            user,
            email,
            name,
            image,
            verified,
        } => {
            tag(5, n, out);
            out.push(user);
            for c in [email, name, image, verified] {
                change(c, out);
            }
        }
        FuzzOp::DeleteUser { user } => {
            tag(6, n, out);
            out.push(user);
        }
        FuzzOp::SetPassword { user, password } => {
            tag(7, n, out);
            out.extend_from_slice(&[user, password]);
        }
        FuzzOp::LinkAccount {
            user,
            provider,
            account,
            provider_type,
            refresh,
            access,
            expires,
        } => {
            tag(8, n, out);
            out.extend_from_slice(&[user, provider, account, provider_type]);
            opt(refresh, out);
            opt(access, out);
            opt(expires, out);
        }
        FuzzOp::UnlinkAccount {
            user,
            provider,
            account,
        } => {
            tag(9, n, out);
            out.extend_from_slice(&[user, provider, account]);
        }
        FuzzOp::CreateSession { user } => {
            tag(10, n, out);
            out.push(user);
        }
        FuzzOp::GetSession { session } => {
            tag(11, n, out);
            out.push(session);
        }
        FuzzOp::UpdateSession {
            session,
            force,
            stale,
        } => {
            tag(12, n, out);
            out.extend_from_slice(&[session, u8::from(force), u8::from(stale)]);
        }
        FuzzOp::DeleteSession { session } => {
            tag(13, n, out);
            out.push(session);
        }
        FuzzOp::ListSessions { user } => {
            tag(14, n, out);
            out.push(user);
        }
        FuzzOp::DeleteSessions { user } => {
            tag(15, n, out);
            out.push(user);
        }
        FuzzOp::DeleteSessionById { user, session } => {
            tag(16, n, out);
            out.extend_from_slice(&[user, session]);
        }
        FuzzOp::CreateVerification {
            identifier,
            token,
            secret,
            send_ok,
            max_age,
        } => {
            tag(17, n, out);
            out.extend_from_slice(&[identifier, token, secret, u8::from(send_ok), max_age]);
        }
        FuzzOp::GetVerification {
            identifier,
            token,
            secret,
        } => {
            tag(18, n, out);
            out.extend_from_slice(&[identifier, token, secret]);
        }
        FuzzOp::DeleteVerification {
            identifier,
            token,
            secret,
        } => {
            tag(19, n, out);
            out.extend_from_slice(&[identifier, token, secret]);
        }
        FuzzOp::UseVerification {
            identifier,
            token,
            secret,
        } => {
            tag(20, n, out);
            out.extend_from_slice(&[identifier, token, secret]);
        }
        FuzzOp::Advance { step } => {
            tag(21, n, out);
            out.push(step);
        }
        FuzzOp::Purge => tag(22, n, out),
        FuzzOp::Txn { len, commit } => {
            tag(23, n, out);
            out.extend_from_slice(&[len, u8::from(commit)]);
        }
        FuzzOp::Reopen => tag(24, n, out),
    }
}

/// Prints the case as the Rust expression of the model's `Case` (for `cargo fuzz fmt` and for
/// turning a crash into a regression test).
impl fmt::Debug for FuzzCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(&self.to_case()))
    }
}

/// `case` as Rust source: `Case { settings: 0, ops: vec![Op::CreateUser { .. }, ..] }`.
pub fn render(case: &Case) -> String {
    let mut s = format!("Case {{ settings: {}, ops: vec![\n", case.settings);
    for op in &case.ops {
        s.push_str("    ");
        s.push_str(&rust_op(op));
        s.push_str(",\n");
    }
    s.push_str("] }");
    s
}

fn rust_op(op: &Op) -> String {
    if let Op::Txn { ops, commit } = op {
        let inner: Vec<String> = ops.iter().map(rust_op).collect();
        return format!(
            "Op::Txn {{ ops: vec![{}], commit: {commit} }}",
            inner.join(", ")
        );
    }
    // The derived Debug of an operation is Rust syntax once its variant and `Change`
    // constructors are qualified.
    let debug = format!("{op:?}");
    let mut out = String::new();
    let mut word = String::new();
    for ch in debug.chars().chain(std::iter::once(' ')) {
        if ch.is_alphanumeric() || ch == '_' {
            word.push(ch);
            continue;
        }
        if !word.is_empty() {
            if matches!(word.as_str(), "Keep" | "Clear" | "Set") {
                out.push_str("Change::");
            } else if out.is_empty() {
                out.push_str("Op::");
            }
            out.push_str(&word);
            word.clear();
        }
        out.push(ch);
    }
    out.trim_end().to_owned()
}

/// A `faults` input: the plan, then the operations.
#[derive(Clone, PartialEq, Eq)]
pub struct FaultInput {
    pub plan: Plan,
    pub case: FuzzCase,
}

impl<'a> Arbitrary<'a> for FaultInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let after: u16 = u.arbitrary()?;
        let flags: u8 = u.arbitrary()?;
        let mode = match (flags & 0x7f) % 3 {
            0 => FailMode::Writes,
            1 => FailMode::Syncs,
            _ => FailMode::All,
        };
        Ok(Self {
            plan: Plan {
                // Past a few hundred calls the fault would rarely fire within `MAX_OPS`.
                after: u32::from(after % 1024),
                mode,
                small_cache: flags & 0x80 != 0,
            },
            case: FuzzCase::arbitrary(u)?,
        })
    }
}

impl FaultInput {
    /// The input bytes that decode to this input.
    ///
    /// # Panics
    /// If `plan.after` does not fit the input's `u16` (decoding keeps it below 1024).
    pub fn encode(&self) -> Vec<u8> {
        let after = u16::try_from(self.plan.after).expect("after < 1024");
        let mode = match self.plan.mode {
            FailMode::Writes => 0,
            FailMode::Syncs => 1,
            FailMode::All => 2,
        };
        let mut out = after.to_le_bytes().to_vec();
        out.push(mode | if self.plan.small_cache { 0x80 } else { 0 });
        out.extend(self.case.encode());
        out
    }
}

impl fmt::Debug for FaultInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}\n{}", self.plan, render(&self.case.to_case()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_inverts_arbitrary() {
        for seed in crate::seeds::ops_seeds() {
            let bytes = seed.encode();
            let back = FuzzCase::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
            assert_eq!(back, seed);
        }
    }
}
