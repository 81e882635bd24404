use super::*;

fn parse(s: &str) -> Result<Vec<f32>, VectorError> {
    let mut v = Vec::new();
    parse_dense("vector", s.as_bytes(), -1, &mut v).map(|_| v)
}

fn fmt1(v: f32) -> String {
    let mut s = String::new();
    write_shortest_f32(v, &mut s);
    s
}

#[test]
fn parses_well_formed_literals() {
    assert_eq!(parse("[1,2,3]").unwrap(), vec![1.0, 2.0, 3.0]);
    assert_eq!(
        parse("  [ 1.5 , -2e3 ,\t+.25 ]\n ").unwrap(),
        vec![1.5, -2000.0, 0.25]
    );
    assert_eq!(parse("[1.]").unwrap(), vec![1.0]);
    assert_eq!(
        parse("[0x10, 0x1p-2, 0X.8]").unwrap(),
        vec![16.0, 0.25, 0.5]
    );
    assert_eq!(
        parse("[1e-50]").unwrap(),
        vec![0.0],
        "underflow is accepted like pgvector"
    );
    assert_eq!(parse("[-0]").unwrap()[0].to_bits(), (-0.0f32).to_bits());
    // An exponent marker without digits is not part of the number.
    assert!(matches!(
        parse("[1e]"),
        Err(VectorError::InvalidSyntax { .. })
    ));
}

#[test]
fn rejects_malformed_literals_with_pgvector_errors() {
    let syntax = |s: &str| VectorError::InvalidSyntax {
        type_name: "vector",
        input: s.to_string(),
    };
    assert_eq!(
        parse(""),
        Err(VectorError::MustStartWithBracket {
            type_name: "vector",
            input: String::new()
        })
    );
    assert!(matches!(
        parse("1,2]"),
        Err(VectorError::MustStartWithBracket { .. })
    ));
    assert_eq!(parse("["), Err(syntax("[")));
    assert_eq!(
        parse("[]"),
        Err(VectorError::NoDimensions {
            type_name: "vector"
        })
    );
    assert_eq!(
        parse("[ ]"),
        Err(VectorError::NoDimensions {
            type_name: "vector"
        })
    );
    for bad in [
        "[1,,2]", "[1 2]", "[1,]", "[,1]", "[1", "[1,2", "[a]", "[1;2]", "[--1]", "[1.2.3]", "[0x]",
    ] {
        assert_eq!(parse(bad), Err(syntax(bad)), "{bad}");
    }
    assert_eq!(
        parse("[1,2] x"),
        Err(VectorError::JunkAfterClosingBracket {
            type_name: "vector",
            input: "[1,2] x".into()
        })
    );
    assert!(matches!(
        parse("[1]]"),
        Err(VectorError::JunkAfterClosingBracket { .. })
    ));
    assert_eq!(
        parse("[1, -1e39]"),
        Err(VectorError::OutOfRange {
            type_name: "vector",
            token: "-1e39".into()
        })
    );
    assert_eq!(
        parse("[1e99999999999999999999999]"),
        Err(VectorError::OutOfRange {
            type_name: "vector",
            token: "1e99999999999999999999999".into()
        })
    );
    assert_eq!(
        parse("[NaN]"),
        Err(VectorError::NaN {
            type_name: "vector"
        })
    );
    assert_eq!(
        parse("[nan(123)]"),
        Err(VectorError::NaN {
            type_name: "vector"
        })
    );
    assert_eq!(
        parse("[1,-Infinity]"),
        Err(VectorError::Infinite {
            type_name: "vector"
        })
    );
    assert_eq!(
        parse("[inf]"),
        Err(VectorError::Infinite {
            type_name: "vector"
        })
    );
}

#[test]
fn dimension_limits() {
    let ok = format!("[{}]", vec!["1"; MAX_DIM].join(","));
    assert_eq!(parse(&ok).unwrap().len(), MAX_DIM);
    let too_many = format!("[{}]", vec!["1"; MAX_DIM + 1].join(","));
    assert_eq!(
        parse(&too_many),
        Err(VectorError::TooManyDimensions {
            type_name: "vector"
        })
    );
    // The limit is hit before the junk at the 16001st position is looked at.
    let junk = format!("[{},x]", vec!["1"; MAX_DIM].join(","));
    assert_eq!(
        parse(&junk),
        Err(VectorError::TooManyDimensions {
            type_name: "vector"
        })
    );
    let mut v = Vec::new();
    assert_eq!(
        parse_dense("vector", b"[1,2]", 3, &mut v),
        Err(VectorError::ExpectedDimensions {
            expected: 3,
            got: 2
        })
    );
    assert!(parse_dense("vector", b"[1,2,3]", 3, &mut v).is_ok());
}

#[test]
fn formats_like_postgres_float4out() {
    for (v, want) in [
        (1.0f32, "1"),
        (-2.5, "-2.5"),
        (0.1, "0.1"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1e20, "1e+20"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.5e-7, "1.5e-07"),
        (3.4028235e38, "3.4028235e+38"),
        (1e-45, "1e-45"),
        (0.0, "0"),
        (-0.0, "-0"),
        (100.0, "100"),
        (1.0 / 3.0, "0.33333334"),
        (1e13, "1e+13"),
        (12345678.0, "1.2345678e+07"),
        (-0.00012, "-0.00012"),
        (9.999999e-5, "9.999999e-05"),
        (f32::INFINITY, "Infinity"),
        (f32::NEG_INFINITY, "-Infinity"),
        (f32::NAN, "NaN"),
    ] {
        assert_eq!(fmt1(v), want, "{v:e}");
    }
    let mut s = String::new();
    format_dense([1.0, 2.5, -3.0], &mut s);
    assert_eq!(s, "[1,2.5,-3]");
}

/// Every f32 bit pattern in a stride round-trips through text exactly, with
/// the shortest digits that do: as many as Rust's own shortest formatting
/// (`{:e}`) prints, in the expected layout (plain for decimal exponents -4..5).
#[test]
fn text_round_trips_bit_exact_and_shortest() {
    let significant = |s: &str| {
        let d: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
        d.trim_start_matches('0').trim_end_matches('0').len()
    };
    let mut bits: u32 = 1;
    while bits < u32::MAX - 7919 * 1024 {
        let v = f32::from_bits(bits);
        if v.is_finite() {
            let ours = fmt1(v);
            assert_eq!(
                parse(&format!("[{ours}]")).unwrap()[0].to_bits(),
                bits,
                "{ours}"
            );
            let rust = format!("{v:e}");
            let (mantissa, exp) = rust.split_once('e').unwrap();
            let ours_mantissa = ours.split('e').next().unwrap();
            assert_eq!(
                significant(ours_mantissa),
                significant(mantissa),
                "{ours} against {rust}"
            );
            let exp: i32 = exp.parse().unwrap();
            assert_eq!(
                ours.contains('e'),
                !(-4..6).contains(&exp),
                "{ours} against {rust}"
            );
        }
        bits += 7919 * 1024 + 1;
    }
}

#[test]
fn binary_round_trip_and_errors() {
    let mut buf = Vec::new();
    encode_dense_f32(&[1.0, -2.5, 3e-40], &mut buf);
    assert_eq!(&buf[..4], &[0, 3, 0, 0]);
    assert_eq!(&buf[4..8], &1.0f32.to_be_bytes());
    let (v, used) = decode_dense_f32("vector", &buf, -1).unwrap();
    assert_eq!((v, used), (vec![1.0, -2.5, 3e-40], 16));
    assert_eq!(
        decode_dense_f32("vector", &buf, 2),
        Err(VectorError::ExpectedDimensions {
            expected: 2,
            got: 3
        })
    );
    assert_eq!(
        decode_dense_f32("vector", &buf[..15], -1),
        Err(VectorError::InsufficientData)
    );
    assert_eq!(
        decode_dense_f32("vector", &[0], -1),
        Err(VectorError::InsufficientData)
    );
    assert_eq!(
        decode_dense_f32("vector", &[0, 0, 0, 0], -1),
        Err(VectorError::NoDimensions {
            type_name: "vector"
        })
    );
    assert_eq!(
        decode_dense_f32("vector", &[0x3e, 0x81, 0, 0], -1),
        Err(VectorError::TooManyDimensions {
            type_name: "vector"
        })
    );
    assert_eq!(
        decode_dense_f32("vector", &[0, 1, 0, 7, 0, 0, 0, 0], -1),
        Err(VectorError::UnusedNotZero { unused: 7 })
    );
    let mut nan = vec![0, 2, 0, 0];
    nan.extend_from_slice(&f32::NAN.to_be_bytes());
    assert_eq!(
        decode_dense_f32("vector", &nan, -1),
        Err(VectorError::NaN {
            type_name: "vector"
        })
    );
    // Trailing bytes are left for the caller (Postgres reports them itself).
    let mut long = buf.clone();
    long.push(9);
    assert_eq!(decode_dense_f32("vector", &long, -1).unwrap().1, 16);
}

#[test]
fn error_codes_and_text() {
    let e = VectorError::MustStartWithBracket {
        type_name: "vector",
        input: "x".into(),
    };
    assert_eq!(e.sqlstate().code(), "22P02");
    assert_eq!(e.message(), "invalid input syntax for type vector: \"x\"");
    assert_eq!(e.detail(), Some("Vector contents must start with \"[\"."));
    assert_eq!(
        VectorError::TooManyDimensions {
            type_name: "vector"
        }
        .sqlstate()
        .code(),
        "54000"
    );
    assert_eq!(
        VectorError::Overflow.message(),
        "value out of range: overflow"
    );
    assert_eq!(
        VectorError::DifferentDimensions {
            type_name: "vector",
            a: 3,
            b: 2
        }
        .message(),
        "different vector dimensions 3 and 2"
    );
}

/// Arbitrary bytes never panic the parser (a small deterministic fuzz).
#[test]
fn parser_survives_random_bytes() {
    let alphabet = b"[]0123456789.,eE+-xXpP naifINF\t()";
    let mut rng = testkit::Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut v = Vec::new();
    for _ in 0..200_000 {
        let len = rng.below(24);
        let mut s = Vec::with_capacity(len + 1);
        s.push(b'[');
        for _ in 0..len {
            s.push(alphabet[rng.below(alphabet.len())]);
        }
        let _ = parse_dense("vector", &s, -1, &mut v);
        let _ = decode_dense_f32("vector", &s, -1);
    }
}

fn parse_half(s: &str) -> Result<Vec<half::f16>, VectorError> {
    let mut v = Vec::new();
    let fits = |x: f32| !half::f16::from_f32(x).is_infinite();
    parse_dense_within("halfvec", s.as_bytes(), -1, fits, &mut v)?;
    v.into_iter().map(|x| f32_to_f16("halfvec", x)).collect()
}

#[test]
fn halfvec_text_rounds_to_nearest_and_rejects_what_does_not_fit() {
    let h = |s: &str| -> Vec<f32> { parse_half(s).unwrap().iter().map(|x| x.to_f32()).collect() };
    assert_eq!(h("[1,2.5,-3]"), vec![1.0, 2.5, -3.0]);
    // 1.23456 lies between binary16 values 1.234375 and 1.2353516
    assert_eq!(fmt1(h("[1.23456]")[0]), "1.234375");
    // the largest finite binary16 is 65504; 65519 rounds down to it, 65520
    // rounds to infinity
    assert_eq!(h("[65519,-65519]"), vec![65504.0, -65504.0]);
    let err = parse_half("[1,65520]").unwrap_err();
    assert_eq!(err.message(), "\"65520\" is out of range for type halfvec");
    assert_eq!(err.sqlstate(), SqlState::NumericValueOutOfRange);
    // too large even for f32: the same error, with the token as written
    let err = parse_half("[4e38]").unwrap_err();
    assert_eq!(err.message(), "\"4e38\" is out of range for type halfvec");
    // tiny values flush to (signed) zero
    let z = parse_half("[1e-8,-1e-8]").unwrap();
    assert_eq!((z[0].to_bits(), z[1].to_bits()), (0, 0x8000));
    assert_eq!(
        parse_half("[NaN]").unwrap_err().message(),
        "NaN not allowed in halfvec"
    );
    assert_eq!(
        parse_half("[-Infinity]").unwrap_err().message(),
        "infinite value not allowed in halfvec"
    );
    assert_eq!(
        parse_half("[]").unwrap_err().message(),
        "halfvec must have at least 1 dimension"
    );
    // conversion from f32 names the value in shortest form
    assert_eq!(
        f32_to_f16("halfvec", 1e5).unwrap_err().message(),
        "\"100000\" is out of range for type halfvec"
    );
    assert!(f32_to_f16("halfvec", f32::INFINITY).unwrap().is_infinite());
}

#[test]
fn halfvec_binary_round_trips_and_checks_elements() {
    let values: Vec<half::f16> = [1.0f32, -2.5, 65504.0, 0.0001]
        .iter()
        .map(|x| half::f16::from_f32(*x))
        .collect();
    let mut buf = Vec::new();
    encode_dense_f16(&values, &mut buf);
    assert_eq!(buf.len(), 4 + 2 * 4);
    assert_eq!(&buf[..6], &[0, 4, 0, 0, 0x3c, 0x00]); // dim 4, unused 0, 1.0
    let (back, used) = decode_dense_f16("halfvec", &buf, -1).unwrap();
    assert_eq!((back, used), (values, buf.len()));
    assert_eq!(
        decode_dense_f16("halfvec", &buf, 3).unwrap_err().message(),
        "expected 3 dimensions, not 4"
    );
    assert!(matches!(
        decode_dense_f16("halfvec", &buf[..9], -1),
        Err(VectorError::InsufficientData)
    ));
    let mut bad = buf.clone();
    bad[4..6].copy_from_slice(&0x7e00u16.to_be_bytes()); // NaN
    assert_eq!(
        decode_dense_f16("halfvec", &bad, -1).unwrap_err().message(),
        "NaN not allowed in halfvec"
    );
    bad[4..6].copy_from_slice(&0xfc00u16.to_be_bytes()); // -inf
    assert_eq!(
        decode_dense_f16("halfvec", &bad, -1).unwrap_err().message(),
        "infinite value not allowed in halfvec"
    );
}

#[test]
fn sparse_text_parses_sorts_and_drops_zeros() {
    let s = parse_sparse(b" { 3:2.5 , 1:1, 2:0 } / 5 ", -1).unwrap();
    assert_eq!(
        (s.dim, s.indices.clone(), s.values.clone()),
        (5, vec![0, 2], vec![1.0, 2.5])
    );
    let mut out = String::new();
    format_sparse(s.dim, &s.indices, &s.values, &mut out);
    assert_eq!(out, "{1:1,3:2.5}/5");
    assert_eq!(
        parse_sparse(b"{}/3", -1).unwrap().indices,
        Vec::<i32>::new()
    );
    assert_eq!(
        parse_sparse(b"{1:1e-46}/3", -1).unwrap_err().message(),
        "\"1e-46\" is out of range for type sparsevec"
    );
    assert_eq!(
        parse_sparse(b"{1:0x1p-200}/3", -1).unwrap_err().sqlstate(),
        SqlState::NumericValueOutOfRange
    );
    assert_eq!(parse_sparse(b"{1:0.0}/3", -1).unwrap().indices.len(), 0);
    let err = |s: &str| parse_sparse(s.as_bytes(), -1).unwrap_err();
    assert_eq!(
        err("[1]").detail(),
        Some("Vector contents must start with \"{\".")
    );
    assert_eq!(err("{1:1}").detail(), Some("Unexpected end of input."));
    assert_eq!(err("{1:1}/3x").detail(), Some("Junk after closing."));
    assert_eq!(
        err("{1:1,}/3").message(),
        "invalid input syntax for type sparsevec: \"{1:1,}/3\""
    );
    assert_eq!(
        err("{1:1}/").message(),
        "invalid input syntax for type sparsevec: \"{1:1}/\""
    );
    assert_eq!(
        err("{a:1}/3").sqlstate(),
        SqlState::InvalidTextRepresentation
    );
    assert_eq!(
        err("{1:1,1:2}/3").message(),
        "sparsevec indices must not contain duplicates"
    );
    assert_eq!(err("{0:1}/3").message(), "sparsevec index out of bounds");
    assert_eq!(err("{4:1}/3").message(), "sparsevec index out of bounds");
    assert_eq!(err("{1:NaN}/3").message(), "NaN not allowed in sparsevec");
    assert_eq!(
        err("{1:-inf}/3").message(),
        "infinite value not allowed in sparsevec"
    );
    assert_eq!(
        err("{}/0").message(),
        "sparsevec must have at least 1 dimension"
    );
    assert_eq!(
        err("{}/-5").message(),
        "sparsevec must have at least 1 dimension"
    );
    assert_eq!(
        err("{}/1000000001").message(),
        "sparsevec cannot have more than 1000000000 dimensions"
    );
    assert_eq!(
        parse_sparse(b"{}/3", 4).unwrap_err().message(),
        "expected 4 dimensions, not 3"
    );
    let many = format!(
        "{{{}}}/100000",
        (1..=16001)
            .map(|i| format!("{i}:1"))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(
        err(&many).message(),
        "sparsevec cannot have more than 16000 non-zero elements"
    );
}

#[test]
fn sparse_binary_round_trips_and_is_checked() {
    let mut buf = Vec::new();
    encode_sparse(5, &[0, 3], &[1.5, -2.0], &mut buf);
    assert_eq!(buf.len(), 12 + 8 * 2);
    let (s, used) = decode_sparse(&buf, -1).unwrap();
    assert_eq!(
        (s.dim, s.indices, s.values, used),
        (5, vec![0, 3], vec![1.5, -2.0], buf.len())
    );
    let bad = |dim: i32, nnz: i32, unused: i32, idx: &[i32], vals: &[f32]| {
        let mut b = Vec::new();
        for x in [dim, nnz, unused] {
            b.extend_from_slice(&x.to_be_bytes());
        }
        idx.iter()
            .for_each(|i| b.extend_from_slice(&i.to_be_bytes()));
        vals.iter()
            .for_each(|v| b.extend_from_slice(&v.to_be_bytes()));
        decode_sparse(&b, -1).unwrap_err().message()
    };
    assert_eq!(
        bad(5, 1, 0, &[0], &[0.0]),
        "binary representation of sparsevec cannot contain zero values"
    );
    assert_eq!(
        bad(5, 2, 0, &[3, 1], &[1.0, 1.0]),
        "sparsevec indices must be in ascending order"
    );
    assert_eq!(bad(5, 1, 0, &[5], &[1.0]), "sparsevec index out of bounds");
    assert_eq!(
        bad(5, -1, 0, &[], &[]),
        "sparsevec cannot have negative number of elements"
    );
    assert_eq!(
        bad(2, 3, 0, &[], &[]),
        "sparsevec cannot have more elements than dimensions"
    );
    assert_eq!(bad(5, 1, 7, &[1], &[1.0]), "expected unused to be 0, not 7");
    assert_eq!(bad(5, 2, 0, &[1], &[]), "insufficient data left in message");
}
