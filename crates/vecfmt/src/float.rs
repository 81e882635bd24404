//! strtof-compatible scanning and Postgres-style shortest float output.

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

/// The digits of ryu's text for a finite, non-zero value without its sign
/// ("1.2345e-7", "123.0", "0.00012" or "1e16"): `(digits, count,
/// exponent)` for `d.ddd x 10^exponent`, trailing zeros dropped.
fn shortest_digits(text: &[u8]) -> ([u8; 24], usize, i32) {
    let (mantissa, e10) = match text.iter().position(|&c| c == b'e') {
        Some(i) => (&text[..i], parse_exponent(&text[i + 1..])),
        None => (text, 0),
    };
    let mut digits = [0u8; 24];
    let (mut n, mut before_point, mut leading_zeros, mut seen_point) = (0, 0i32, 0i32, false);
    for &c in mantissa {
        if c == b'.' {
            seen_point = true;
            continue;
        }
        if !seen_point {
            before_point += 1;
        }
        if n == 0 && c == b'0' {
            leading_zeros += 1;
        } else {
            digits[n] = c;
            n += 1;
        }
    }
    while n > 1 && digits[n - 1] == b'0' {
        n -= 1;
    }
    (digits, n, before_point - 1 - leading_zeros + e10)
}

fn parse_exponent(s: &[u8]) -> i32 {
    let (negative, s) = match s.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let e = s.iter().fold(0i32, |e, &c| e * 10 + i32::from(c - b'0'));
    if negative {
        -e
    } else {
        e
    }
}

/// Appends the shortest text that reads back as `v`, in the layout of
/// Postgres' float4out: plain notation for decimal exponents -4..5, otherwise
/// `d.ddde+XX` with at least two exponent digits. Infinities and NaN (which no
/// vector holds) are written as float4out writes them.
pub fn write_shortest_f32(v: f32, out: &mut String) {
    if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    if !v.is_finite() {
        out.push_str(match v {
            f32::INFINITY => "Infinity",
            f32::NEG_INFINITY => "-Infinity",
            _ => "NaN",
        });
        return;
    }
    // Most values (embeddings' among them) have a decimal exponent in
    // -4..5, for which ryu's own text is float4out's once a trailing ".0"
    // goes: "0.0123", "-1.5", "123456.0".
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(v);
    let body = text
        .as_bytes()
        .strip_prefix(b"-")
        .unwrap_or(text.as_bytes());
    if !body.contains(&b'e') {
        let plain = if body[0] == b'0' {
            body[2..].iter().take_while(|&&c| c == b'0').count() <= 3
        } else {
            body.iter().position(|&c| c == b'.').unwrap_or(body.len()) <= 6
        };
        if plain {
            out.push_str(text.strip_suffix(".0").unwrap_or(text));
            return;
        }
    }
    let (digits, n, exp) = shortest_digits(body);
    // the text is put together in a stack buffer and appended once
    let mut text = [0u8; 32];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        text[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    if v.is_sign_negative() {
        put(b"-");
    }
    if (-4..6).contains(&exp) {
        if exp < 0 {
            put(b"0.");
            put(&b"000"[..(-exp - 1) as usize]);
            put(&digits[..n]);
        } else {
            let int_len = exp as usize + 1;
            if n <= int_len {
                put(&digits[..n]);
                put(&b"00000"[..int_len - n]);
            } else {
                put(&digits[..int_len]);
                put(b".");
                put(&digits[int_len..n]);
            }
        }
    } else {
        put(&digits[..1]);
        if n > 1 {
            put(b".");
            put(&digits[1..n]);
        }
        put(if exp < 0 { b"e-" } else { b"e+" });
        let e = exp.unsigned_abs();
        if e >= 100 {
            put(&[b'0' + (e / 100) as u8]);
        }
        put(&[b'0' + (e / 10 % 10) as u8, b'0' + (e % 10) as u8]);
    }
    out.push_str(std::str::from_utf8(&text[..len]).expect("ASCII"));
}
