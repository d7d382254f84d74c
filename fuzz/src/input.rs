//! The fuzz inputs: the model's own operation language (`../tests/model/ops.rs`, whose types
//! derive `Arbitrary` here), a case wrapper and a fault plan.
//!
//! [`FuzzCase`] reads the settings byte, then operations until the input ends (at most
//! [`MAX_OPS`]), so that every byte string is a valid case and mutations stay local. A `Txn`
//! carries its operations inline (derived: a continue byte before each).
//!
//! Nothing here restates an operation: [`encode`] (the inverse of `Arbitrary`, for seed
//! inputs) and [`render`] (a case as Rust source, for `cargo fuzz fmt` and regression tests)
//! walk the derived `Serialize` of the same types.

use std::fmt::{self, Write as _};

use arbitrary::{Arbitrary, Unstructured};
use serde::ser::{self, Serialize};

use crate::faults::{FailMode, Plan};
use crate::model::{Case, Change, Op};

/// The most top-level operations one input runs, so that one execution stays fast.
pub const MAX_OPS: usize = 64;

/// An `ops` input: session settings and an operation sequence.
#[derive(Clone, PartialEq, Eq)]
pub struct FuzzCase(pub Case);

impl<'a> Arbitrary<'a> for FuzzCase {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let settings = u.arbitrary()?;
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            ops.push(u.arbitrary()?);
        }
        Ok(Self(Case { settings, ops }))
    }
}

impl FuzzCase {
    /// The input bytes that decode to this case.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.0.settings];
        for op in &self.0.ops {
            out.extend(encode(op));
        }
        out
    }
}

/// Prints the case as the Rust expression of the model's `Case`.
impl fmt::Debug for FuzzCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(&self.0))
    }
}

/// `case` as Rust source: `Case { settings: 0, ops: vec![Op::CreateUser { .. }, ..] }`.
pub fn render(case: &Case) -> String {
    let mut s = format!("Case {{ settings: {}, ops: vec![\n", case.settings);
    for op in &case.ops {
        let _ = writeln!(s, "    {},", rust(op));
    }
    s.push_str("] }");
    s
}

/// One value of the operation language as Rust source (`Op::Advance { step: 4 }`).
///
/// # Panics
/// For a value outside the operation language (a string, a map...).
pub fn rust<T: Serialize>(v: &T) -> String {
    let mut r = Render::default();
    v.serialize(&mut r).expect("operations render");
    r.out
}

/// The bytes from which `T::arbitrary` makes `v`.
///
/// # Panics
/// For a value outside the operation language (a string, a map...).
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut b = Bytes(Vec::new());
    v.serialize(&mut b).expect("operations encode");
    b.0
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
        let mode = match (flags & 0x7f) % 4 {
            0 => FailMode::Writes,
            1 => FailMode::Syncs,
            2 => FailMode::All,
            // Which unsynced writes survive: two more bytes.
            _ => FailMode::PowerCut {
                seed: u32::from(u.arbitrary::<u16>()?),
            },
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
    /// If `plan.after` or a power cut's seed does not fit the input's `u16` (decoding keeps
    /// them below 1024 and 65536).
    pub fn encode(&self) -> Vec<u8> {
        let after = u16::try_from(self.plan.after).expect("after < 1024");
        let mode = match self.plan.mode {
            FailMode::Writes => 0,
            FailMode::Syncs => 1,
            FailMode::All => 2,
            FailMode::PowerCut { .. } => 3,
        };
        let mut out = after.to_le_bytes().to_vec();
        out.push(mode | if self.plan.small_cache { 0x80 } else { 0 });
        if let FailMode::PowerCut { seed } = self.plan.mode {
            let seed = u16::try_from(seed).expect("seed < 65536");
            out.extend(seed.to_le_bytes());
        }
        out.extend(self.case.encode());
        out
    }
}

impl fmt::Debug for FaultInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}\n{}", self.plan, render(&self.case.0))
    }
}

// ---- walking the derived `Serialize` ---------------------------------------------------------

/// How many variants the enum `name` has: the derived `Arbitrary` maps its tag onto that
/// many. Found by decoding the largest tag (the last variant) and asking for its index.
fn variant_count(name: &str) -> u64 {
    fn count<T: for<'a> Arbitrary<'a> + Serialize>() -> u64 {
        let last = T::arbitrary(&mut Unstructured::new(&[0xff; 4])).expect("decodes");
        let mut r = Render::default();
        last.serialize(&mut r).expect("renders");
        u64::from(r.first_variant.expect("an enum")) + 1
    }
    match name {
        "Op" => count::<Op>(),
        "Change" => count::<Change>(),
        other => panic!("no variant count for enum {other}"),
    }
}

/// The tag bytes of variant `i` of `n` as `#[derive(Arbitrary)]` reads them: a little-endian
/// `u32` that it maps to `(tag * n) >> 32`.
fn tag(i: u32, name: &str, out: &mut Vec<u8>) {
    let n = variant_count(name);
    let t = u32::try_from((u64::from(i) << 32).div_ceil(n)).expect("variant index in range");
    out.extend_from_slice(&t.to_le_bytes());
}

#[derive(Debug)]
struct Unsupported(String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Unsupported(msg.to_string())
    }
}

/// The serde data-model parts the operation language does not use.
macro_rules! unsupported {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<$ret, Unsupported> {
            Err(Unsupported(concat!("not in the operation language: ", stringify!($method)).into()))
        }
    )*};
}

/// Writes the bytes `Arbitrary` reads: integers little-endian, `bool` and the `Option` flag as
/// one byte, enum tags as above, a `Vec` as a 1 byte before each element and a 0 after.
struct Bytes(Vec<u8>);

impl<'s> ser::Serializer for &'s mut Bytes {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = &'s mut Bytes;
    type SerializeTuple = ser::Impossible<(), Unsupported>;
    type SerializeTupleStruct = ser::Impossible<(), Unsupported>;
    type SerializeTupleVariant = ser::Impossible<(), Unsupported>;
    type SerializeMap = ser::Impossible<(), Unsupported>;
    type SerializeStruct = &'s mut Bytes;
    type SerializeStructVariant = &'s mut Bytes;

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        self.0.push(u8::from(v));
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unsupported> {
        self.0.push(v);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unsupported> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unsupported> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unsupported> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        self.0.push(0);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Unsupported> {
        self.0.push(1);
        v.serialize(self)
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        _: &'static str,
    ) -> Result<(), Unsupported> {
        tag(index, name, &mut self.0);
        Ok(())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        _: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        tag(index, name, &mut self.0);
        v.serialize(self)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, Unsupported> {
        tag(index, name, &mut self.0);
        Ok(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, Unsupported> {
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Unsupported> {
        Ok(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        v.serialize(self)
    }
    unsupported! {
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
    }
}

impl ser::SerializeSeq for &mut Bytes {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
        self.0.push(1);
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.0.push(0);
        Ok(())
    }
}

impl ser::SerializeStruct for &mut Bytes {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Unsupported> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for &mut Bytes {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Unsupported> {
        Ok(())
    }
}

/// Writes Rust source: `Op::CreateUser { email: Some(0), .. }`, `Change::Set(2)`, `vec![..]`.
/// Also remembers the index of the first enum variant met (for [`variant_count`]).
#[derive(Default)]
struct Render {
    out: String,
    first_variant: Option<u32>,
    /// Whether the struct (variant) being written has had a field yet.
    fields: Vec<bool>,
}

impl Render {
    fn variant(&mut self, name: &str, index: u32, variant: &str) {
        self.first_variant.get_or_insert(index);
        let _ = write!(self.out, "{name}::{variant}");
    }
}

impl<'s> ser::Serializer for &'s mut Render {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = &'s mut Render;
    type SerializeTuple = ser::Impossible<(), Unsupported>;
    type SerializeTupleStruct = ser::Impossible<(), Unsupported>;
    type SerializeTupleVariant = ser::Impossible<(), Unsupported>;
    type SerializeMap = ser::Impossible<(), Unsupported>;
    type SerializeStruct = &'s mut Render;
    type SerializeStructVariant = &'s mut Render;

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        let _ = write!(self.out, "{v}");
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unsupported> {
        let _ = write!(self.out, "{v}");
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unsupported> {
        let _ = write!(self.out, "{v}");
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unsupported> {
        let _ = write!(self.out, "{v}");
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unsupported> {
        let _ = write!(self.out, "{v}");
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        self.out.push_str("None");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Unsupported> {
        self.out.push_str("Some(");
        v.serialize(&mut *self)?;
        self.out.push(')');
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.variant(name, index, variant);
        Ok(())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        self.variant(name, index, variant);
        self.out.push('(');
        v.serialize(&mut *self)?;
        self.out.push(')');
        Ok(())
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self, Unsupported> {
        self.variant(name, index, variant);
        self.out.push_str(" {");
        self.fields.push(false);
        Ok(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, Unsupported> {
        self.out.push_str("vec![");
        self.fields.push(false);
        Ok(self)
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Self, Unsupported> {
        let _ = write!(self.out, "{name} {{");
        self.fields.push(false);
        Ok(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        v.serialize(self)
    }
    unsupported! {
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
    }
}

impl Render {
    /// Starts the next field (or element) of the struct being written.
    fn next(&mut self, separator: &str) {
        if let Some(had) = self.fields.last_mut() {
            if *had {
                self.out.push(',');
            }
            *had = true;
        }
        self.out.push_str(separator);
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, v: &T) -> Result<(), Unsupported> {
        self.next(" ");
        let _ = write!(self.out, "{key}: ");
        v.serialize(&mut *self)
    }

    fn close(&mut self, closing: &str) {
        let had = self.fields.pop().unwrap_or(false);
        if had && closing == "}" {
            self.out.push(' ');
        }
        self.out.push_str(closing);
    }
}

impl ser::SerializeSeq for &mut Render {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
        let first = !self.fields.last().copied().unwrap_or(false);
        self.next(if first { "" } else { " " });
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.close("]");
        Ok(())
    }
}

impl ser::SerializeStruct for &mut Render {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        self.field(key, v)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.close("}");
        Ok(())
    }
}

impl ser::SerializeStructVariant for &mut Render {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        self.field(key, v)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.close("}");
        Ok(())
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
            assert_eq!(back, seed, "{}", render(&seed.0));
        }
        for seed in crate::seeds::fault_seeds() {
            let bytes = seed.encode();
            let back = FaultInput::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
            assert_eq!(back, seed);
        }
    }

    #[test]
    fn renders_rust() {
        let case = Case {
            settings: 1,
            ops: vec![
                Op::Advance { step: 4 },
                Op::Txn {
                    ops: vec![
                        Op::GetUser { user: 0 },
                        Op::PatchUser {
                            user: 1,
                            email: Change::Set(3),
                            name: Change::Keep,
                            image: Change::Clear,
                            verified: Change::Keep,
                            extra: None,
                        },
                    ],
                    commit: true,
                },
                Op::Purge,
            ],
        };
        assert_eq!(
            render(&case),
            "Case { settings: 1, ops: vec![\n    Op::Advance { step: 4 },\n    \
             Op::Txn { ops: vec![Op::GetUser { user: 0 }, Op::PatchUser { user: 1, email: \
             Change::Set(3), name: Change::Keep, image: Change::Clear, verified: Change::Keep, \
             extra: None }], commit: true },\n    Op::Purge,\n] }"
        );
    }
}
