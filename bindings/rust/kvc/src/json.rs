//! A small JSON value and reader for what the library returns as JSON (a
//! node's stats and tenants). The crates have no dependencies, serde
//! included, so this is the whole of it: numbers are kept as their text and
//! read as `u64`, `i64` or `f64` on request.
use std::collections::BTreeMap;
use std::fmt;

use crate::codes::Code;
use crate::error::{Error, Result};

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// A number, as written (so that 64-bit counters keep every digit).
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    /// Parses one JSON text. Malformed text is a [`Code::Parse`] error.
    pub fn parse(text: &str) -> Result<Json> {
        let mut p = Parser { b: text.as_bytes(), i: 0, depth: 0 };
        let v = p.value()?;
        p.ws();
        if p.i != p.b.len() {
            return Err(p.fail("trailing text"));
        }
        Ok(v)
    }

    /// The field `key` of an object; `None` for a missing field or a value
    /// that is not an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(m) => m.get(key),
            _ => None,
        }
    }

    /// Follows a path of object fields: `j.path(&["tiers", "host", "used_bytes"])`.
    pub fn path(&self, keys: &[&str]) -> Option<&Json> {
        keys.iter().try_fold(self, |j, k| j.get(k))
    }

    /// A non-negative integer's value.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// An integer's value.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// A number's value (nearest `f64`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&BTreeMap<String, Json>> {
        match self {
            Json::Object(m) => Some(m),
            _ => None,
        }
    }
}

impl fmt::Display for Json {
    /// Compact JSON text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Number(n) => f.write_str(n),
            Json::String(s) => write_str(f, s),
            Json::Array(v) => {
                f.write_str("[")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
            Json::Object(m) => {
                f.write_str("{")?;
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write_str(f, k)?;
                    write!(f, ":{x}")?;
                }
                f.write_str("}")
            }
        }
    }
}

fn write_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// Nesting deeper than this is refused (the stack is not unbounded).
const MAX_DEPTH: usize = 128;

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn fail(&self, what: &str) -> Error {
        Error::new(Code::Parse, format!("bad JSON from the library: {what} at byte {}", self.i))
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Result<u8> {
        self.ws();
        self.b.get(self.i).copied().ok_or_else(|| self.fail("unexpected end"))
    }

    fn eat(&mut self, c: u8) -> Result<()> {
        if self.peek()? != c {
            return Err(self.fail(&format!("expected {:?}", c as char)));
        }
        self.i += 1;
        Ok(())
    }

    fn value(&mut self) -> Result<Json> {
        match self.peek()? {
            b'{' | b'[' if self.depth >= MAX_DEPTH => Err(self.fail("nesting too deep")),
            b'{' => {
                let mut m = BTreeMap::new();
                self.items(b'}', |p| {
                    if p.peek()? != b'"' {
                        return Err(p.fail("expected a field name"));
                    }
                    let k = p.string()?;
                    p.eat(b':')?;
                    m.insert(k, p.value()?);
                    Ok(())
                })?;
                Ok(Json::Object(m))
            }
            b'[' => {
                let mut v = Vec::new();
                self.items(b']', |p| {
                    v.push(p.value()?);
                    Ok(())
                })?;
                Ok(Json::Array(v))
            }
            b'"' => Ok(Json::String(self.string()?)),
            b't' => self.word("true", Json::Bool(true)),
            b'f' => self.word("false", Json::Bool(false)),
            b'n' => self.word("null", Json::Null),
            b'-' | b'0'..=b'9' => {
                let s = self.i;
                while self.i < self.b.len() && matches!(self.b[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.i += 1;
                }
                let n = std::str::from_utf8(&self.b[s..self.i]).map_err(|_| self.fail("bad number"))?;
                if n.parse::<f64>().is_err() {
                    return Err(self.fail("bad number"));
                }
                Ok(Json::Number(n.to_string()))
            }
            _ => Err(self.fail("unexpected character")),
        }
    }

    /// The items of the object or array opening at the cursor, up to its
    /// `close`, each read by `item`.
    fn items(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        self.i += 1;
        self.depth += 1;
        if self.peek()? == close {
            self.i += 1;
        } else {
            loop {
                item(self)?;
                match self.peek()? {
                    b',' => self.i += 1,
                    c if c == close => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(self.fail(&format!("expected ',' or '{}'", close as char))),
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    fn word(&mut self, w: &str, v: Json) -> Result<Json> {
        if !self.b[self.i..].starts_with(w.as_bytes()) {
            return Err(self.fail("bad literal"));
        }
        self.i += w.len();
        Ok(v)
    }

    fn hex4(&mut self) -> Result<u16> {
        let h = self.b.get(self.i..self.i + 4).ok_or_else(|| self.fail("short \\u escape"))?;
        let v = std::str::from_utf8(h)
            .ok()
            .and_then(|h| u16::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.fail("bad \\u escape"))?;
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String> {
        self.i += 1; // the opening quote
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.b.len() && !matches!(self.b[self.i], b'"' | b'\\') {
                self.i += 1;
            }
            out.push_str(std::str::from_utf8(&self.b[start..self.i]).map_err(|_| self.fail("bad UTF-8"))?);
            let c = *self.b.get(self.i).ok_or_else(|| self.fail("unterminated string"))?;
            self.i += 1;
            if c == b'"' {
                return Ok(out);
            }
            let e = *self.b.get(self.i).ok_or_else(|| self.fail("unterminated string"))?;
            self.i += 1;
            let ch = match e {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'n' => '\n',
                b't' => '\t',
                b'r' => '\r',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'u' => {
                    let hi = self.hex4()?;
                    let unit = if (0xD800..0xDC00).contains(&hi) && self.b[self.i..].starts_with(b"\\u") {
                        self.i += 2;
                        let lo = self.hex4()?;
                        char::decode_utf16([hi, lo]).next()
                    } else {
                        char::decode_utf16([hi]).next()
                    };
                    unit.and_then(|r| r.ok()).ok_or_else(|| self.fail("bad \\u escape"))?
                }
                _ => return Err(self.fail("bad escape")),
            };
            out.push(ch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = r#" {"a": [1, -2.5e3, true, false, null], "b": {"c": "x\"\u00e9\ud83d\ude00\n"}, "n": 18446744073709551615} "#;
        let j = Json::parse(t).unwrap();
        assert_eq!(j.get("n").and_then(Json::as_u64), Some(u64::MAX));
        assert_eq!(j.path(&["b", "c"]).and_then(Json::as_str), Some("x\"é😀\n"));
        assert_eq!(j.get("a").and_then(Json::as_array).map(|a| a.len()), Some(5));
        assert_eq!(j.get("a").unwrap().as_array().unwrap()[1].as_f64(), Some(-2500.0));
        assert_eq!(Json::parse(&j.to_string()).unwrap(), j);
    }

    #[test]
    fn malformed() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "tru", "\"abc", "1 2", "{1:2}", "-", "\"\\q\""] {
            let e = Json::parse(bad).unwrap_err();
            assert_eq!(e.code(), Code::Parse, "{bad:?}");
            assert!(e.message().contains("bad JSON"), "{bad:?}: {e}");
        }
        for (bad, want) in [("[1 2]", "expected ',' or ']'"), ("{\"a\":1 \"b\":2}", "expected ',' or '}'")] {
            let e = Json::parse(bad).unwrap_err();
            assert!(e.message().contains(want), "{bad:?}: {e}");
        }
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(Json::parse(&ok).is_ok());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(Json::parse(&deep).unwrap_err().message().contains("deep"));
    }
}
