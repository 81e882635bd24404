//! strtof-compatible scanning and Postgres-style shortest float output.

use std::fmt::Write;

/// A number found at the start of the input by `scan_float`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScannedFloat {
    /// Bytes consumed, leading whitespace included.
    pub len: usize,
    /// Where the number's own text starts (after leading whitespace).
    pub start: usize,
    pub value: f32,
    /// A finite literal too large for f32 (strtof's ERANGE with infinity).
    pub overflow: bool,
}

/// Leading whitespace (its length), then an optional sign: whether it is
/// '-', and where the number after it starts.
pub(crate) fn space_and_sign(s: &[u8]) -> (usize, bool, usize) {
    let start = s.iter().take_while(|c| crate::is_pg_space(**c)).count();
    match s.get(start) {
        Some(b'-') => (start, true, start + 1),
        Some(b'+') => (start, false, start + 1),
        _ => (start, false, start),
    }
}

fn starts_with_ci(s: &[u8], word: &[u8]) -> bool {
    s.len() >= word.len() && s[..word.len()].eq_ignore_ascii_case(word)
}

fn count_digits(s: &[u8], hex: bool) -> usize {
    s.iter()
        .take_while(|c| {
            if hex {
                c.is_ascii_hexdigit()
            } else {
                c.is_ascii_digit()
            }
        })
        .count()
}

/// Accepts what C's strtof accepts at the start of `s`: optional whitespace and
/// sign, then a decimal number with optional exponent, a hexadecimal float,
/// `inf`, `infinity` or `nan[(chars)]` (case-insensitive). Returns None when
/// no number starts there.
pub fn scan_float(s: &[u8]) -> Option<ScannedFloat> {
    let (start, negative, i) = space_and_sign(s);
    let sign = |v: f32| if negative { -v } else { v };
    let rest = &s[i..];
    let done = |len: usize, value: f32, overflow: bool| {
        Some(ScannedFloat {
            len,
            start,
            value,
            overflow,
        })
    };

    if starts_with_ci(rest, b"infinity") {
        return done(i + 8, sign(f32::INFINITY), false);
    }
    if starts_with_ci(rest, b"inf") {
        return done(i + 3, sign(f32::INFINITY), false);
    }
    if starts_with_ci(rest, b"nan") {
        let mut len = i + 3;
        if s.get(len) == Some(&b'(') {
            let inner = s[len + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            if s.get(len + 1 + inner) == Some(&b')') {
                len += inner + 2;
            }
        }
        return done(len, f32::NAN, false);
    }
    if rest.len() > 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        if let Some((len, value)) = scan_hex(&rest[2..]) {
            let value = sign(value);
            return done(i + 2 + len, value, value.is_infinite());
        }
    }

    let int_digits = count_digits(rest, false);
    let mut j = int_digits;
    let mut frac_digits = 0;
    if rest.get(j) == Some(&b'.') {
        frac_digits = count_digits(&rest[j + 1..], false);
        j += 1 + frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if matches!(rest.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(rest.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        let exp_digits = count_digits(&rest[k..], false);
        if exp_digits > 0 {
            j = k + exp_digits;
        }
    }
    // The token is ASCII by construction and matches Rust's float grammar.
    let text = std::str::from_utf8(&rest[..j]).ok()?;
    let value: f32 = text.parse().ok()?;
    done(i + j, sign(value), value.is_infinite())
}

/// Hex digits `h+[.h*]` or `.h+`, then an optional binary exponent `p[+-]d+`.
/// Correctly rounded: up to 60 mantissa bits plus a sticky bit go through f64
/// (53 >= 2*24+2, so rounding twice cannot differ from rounding once).
fn scan_hex(s: &[u8]) -> Option<(usize, f32)> {
    let mut mantissa: u64 = 0;
    let mut sticky = false;
    let mut exp: i64 = 0;
    let mut digits = 0;
    let mut i = 0;
    let mut seen_point = false;
    while i < s.len() {
        let c = s[i];
        if c == b'.' && !seen_point {
            seen_point = true;
            i += 1;
            continue;
        }
        let Some(d) = (c as char).to_digit(16) else {
            break;
        };
        digits += 1;
        if mantissa >> 56 == 0 {
            mantissa = (mantissa << 4) | d as u64;
            if seen_point {
                exp -= 4;
            }
        } else {
            sticky |= d != 0;
            if !seen_point {
                exp += 4;
            }
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if matches!(s.get(i), Some(b'p' | b'P')) {
        let mut k = i + 1;
        let negative = s.get(k) == Some(&b'-');
        if matches!(s.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        let n = count_digits(&s[k..], false);
        if n > 0 {
            let mut e: i64 = 0;
            for &c in &s[k..k + n] {
                e = (e * 10 + (c - b'0') as i64).min(1 << 20);
            }
            exp += if negative { -e } else { e };
            i = k + n;
        }
    }
    let m = (mantissa | sticky as u64) as f64;
    let value = if mantissa == 0 {
        0.0
    } else if exp > 1100 {
        f64::INFINITY
    } else if exp < -1100 {
        0.0
    } else {
        let half = (exp / 2) as i32;
        m * 2f64.powi(half) * 2f64.powi(exp as i32 - half)
    };
    Some((i, value as f32))
}

/// Appends the shortest text that reads back as `v`, in the layout of
/// Postgres' float4out: plain notation for decimal exponents -4..5, otherwise
/// `d.ddde+XX` with at least two exponent digits.
pub fn write_shortest_f32(v: f32, out: &mut String) {
    if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // Rust's `{:e}` prints the shortest round-trip digits: "-1.2345e-7".
    let mut buf = SmallBuf::default();
    let _ = write!(buf, "{v:e}");
    let text = buf.as_str();
    let (mantissa, exp) = text
        .split_once('e')
        .expect("LowerExp always has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    if negative {
        out.push('-');
    }
    let mut digits = [0u8; 16];
    let mut n = 0;
    for c in mantissa.bytes().filter(|c| *c != b'.') {
        digits[n] = c;
        n += 1;
    }
    let digits = std::str::from_utf8(&digits[..n]).expect("ASCII digits");
    if (-4..6).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(digits);
        } else {
            let int_len = exp as usize + 1;
            if n <= int_len {
                out.push_str(digits);
                for _ in n..int_len {
                    out.push('0');
                }
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

/// A fixed stack buffer for one formatted float (at most ~16 bytes).
#[derive(Default)]
struct SmallBuf {
    bytes: [u8; 32],
    len: usize,
}

impl SmallBuf {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).expect("formatter writes UTF-8")
    }
}

impl Write for SmallBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
