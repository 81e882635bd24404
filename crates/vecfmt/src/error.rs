use std::fmt;

/// The SQLSTATEs the vector types raise (Postgres' five-character codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlState {
    /// 22000
    DataException,
    /// 22P02
    InvalidTextRepresentation,
    /// 22003
    NumericValueOutOfRange,
    /// 54000
    ProgramLimitExceeded,
    /// 22023
    InvalidParameterValue,
    /// 08P01
    ProtocolViolation,
    /// 22004
    NullValueNotAllowed,
}

impl SqlState {
    pub fn code(self) -> &'static str {
        match self {
            SqlState::DataException => "22000",
            SqlState::InvalidTextRepresentation => "22P02",
            SqlState::NumericValueOutOfRange => "22003",
            SqlState::ProgramLimitExceeded => "54000",
            SqlState::InvalidParameterValue => "22023",
            SqlState::ProtocolViolation => "08P01",
            SqlState::NullValueNotAllowed => "22004",
        }
    }
}

/// Every user-facing error of the vector types, worded as pgvector words it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VectorError {
    /// Input that does not start with '['; `input` is the whole literal.
    MustStartWithBracket {
        type_name: &'static str,
        input: String,
    },
    InvalidSyntax {
        type_name: &'static str,
        input: String,
    },
    JunkAfterClosingBracket {
        type_name: &'static str,
        input: String,
    },
    /// A number too large for the element type; `token` is its text.
    OutOfRange {
        type_name: &'static str,
        token: String,
    },
    NoDimensions {
        type_name: &'static str,
    },
    TooManyDimensions {
        type_name: &'static str,
    },
    NaN {
        type_name: &'static str,
    },
    Infinite {
        type_name: &'static str,
    },
    DifferentDimensions {
        type_name: &'static str,
        a: i64,
        b: i64,
    },
    DifferentBitLengths {
        a: u32,
        b: u32,
    },
    ExpectedDimensions {
        expected: i64,
        got: i64,
    },
    UnusedNotZero {
        unused: i64,
    },
    /// A binary message that ends early (Postgres' own wording).
    InsufficientData,
    Overflow,
    Underflow,
    TypmodNotOne,
    TypmodTooSmall {
        type_name: &'static str,
    },
    TypmodTooLarge {
        type_name: &'static str,
    },
    ArrayNotOneDimensional,
    ArrayHasNulls,
    UnsupportedArrayType,
    /// A sparsevec literal that does not start with '{'.
    MustStartWithBrace {
        input: String,
    },
    /// A sparsevec literal without "/dimensions" after its '}'.
    UnexpectedEnd {
        input: String,
    },
    /// Text after a sparsevec literal's dimensions.
    JunkAfterSparse {
        input: String,
    },
    NegativeNnz,
    TooManyNnz,
    MoreNnzThanDimensions,
    IndexOutOfBounds,
    IndicesNotAscending,
    DuplicateIndices,
    ZeroInBinary,
}

impl VectorError {
    pub fn sqlstate(&self) -> SqlState {
        use VectorError::*;
        match self {
            MustStartWithBracket { .. } | InvalidSyntax { .. } | JunkAfterClosingBracket { .. } => {
                SqlState::InvalidTextRepresentation
            }
            OutOfRange { .. } | Overflow | Underflow => SqlState::NumericValueOutOfRange,
            TooManyDimensions { .. } => SqlState::ProgramLimitExceeded,
            TypmodNotOne | TypmodTooSmall { .. } | TypmodTooLarge { .. } => {
                SqlState::InvalidParameterValue
            }
            InsufficientData => SqlState::ProtocolViolation,
            MustStartWithBrace { .. } | UnexpectedEnd { .. } | JunkAfterSparse { .. } => {
                SqlState::InvalidTextRepresentation
            }
            TooManyNnz | MoreNnzThanDimensions => SqlState::ProgramLimitExceeded,
            NegativeNnz | IndexOutOfBounds | IndicesNotAscending | DuplicateIndices
            | ZeroInBinary => SqlState::DataException,
            ArrayHasNulls => SqlState::NullValueNotAllowed,
            NoDimensions { .. }
            | NaN { .. }
            | Infinite { .. }
            | DifferentDimensions { .. }
            | DifferentBitLengths { .. }
            | ExpectedDimensions { .. }
            | UnusedNotZero { .. }
            | ArrayNotOneDimensional
            | UnsupportedArrayType => SqlState::DataException,
        }
    }

    pub fn message(&self) -> String {
        use VectorError::*;
        match self {
            MustStartWithBracket { type_name, input }
            | InvalidSyntax { type_name, input }
            | JunkAfterClosingBracket { type_name, input } => {
                format!("invalid input syntax for type {type_name}: \"{input}\"")
            }
            OutOfRange { type_name, token } => {
                format!("\"{token}\" is out of range for type {type_name}")
            }
            NoDimensions { type_name } => format!("{type_name} must have at least 1 dimension"),
            TooManyDimensions { type_name } => {
                format!(
                    "{type_name} cannot have more than {} dimensions",
                    crate::max_dim(type_name)
                )
            }
            NaN { type_name } => format!("NaN not allowed in {type_name}"),
            Infinite { type_name } => format!("infinite value not allowed in {type_name}"),
            DifferentDimensions { type_name, a, b } => {
                format!("different {type_name} dimensions {a} and {b}")
            }
            DifferentBitLengths { a, b } => format!("different bit lengths {a} and {b}"),
            ExpectedDimensions { expected, got } => {
                format!("expected {expected} dimensions, not {got}")
            }
            UnusedNotZero { unused } => format!("expected unused to be 0, not {unused}"),
            InsufficientData => "insufficient data left in message".to_string(),
            Overflow => "value out of range: overflow".to_string(),
            Underflow => "value out of range: underflow".to_string(),
            TypmodNotOne => "invalid type modifier".to_string(),
            TypmodTooSmall { type_name } => {
                format!("dimensions for type {type_name} must be at least 1")
            }
            TypmodTooLarge { type_name } => {
                format!(
                    "dimensions for type {type_name} cannot exceed {}",
                    crate::max_dim(type_name)
                )
            }
            ArrayNotOneDimensional => "array must be 1-D".to_string(),
            ArrayHasNulls => "array must not contain nulls".to_string(),
            UnsupportedArrayType => "unsupported array type".to_string(),
            MustStartWithBrace { input } | UnexpectedEnd { input } | JunkAfterSparse { input } => {
                format!("invalid input syntax for type sparsevec: \"{input}\"")
            }
            NegativeNnz => "sparsevec cannot have negative number of elements".to_string(),
            TooManyNnz => format!(
                "sparsevec cannot have more than {} non-zero elements",
                crate::SPARSE_MAX_NNZ
            ),
            MoreNnzThanDimensions => {
                "sparsevec cannot have more elements than dimensions".to_string()
            }
            IndexOutOfBounds => "sparsevec index out of bounds".to_string(),
            IndicesNotAscending => "sparsevec indices must be in ascending order".to_string(),
            DuplicateIndices => "sparsevec indices must not contain duplicates".to_string(),
            ZeroInBinary => {
                "binary representation of sparsevec cannot contain zero values".to_string()
            }
        }
    }

    pub fn detail(&self) -> Option<&'static str> {
        match self {
            VectorError::MustStartWithBracket { .. } => {
                Some("Vector contents must start with \"[\".")
            }
            VectorError::JunkAfterClosingBracket { .. } => Some("Junk after closing right brace."),
            VectorError::MustStartWithBrace { .. } => {
                Some("Vector contents must start with \"{\".")
            }
            VectorError::UnexpectedEnd { .. } => Some("Unexpected end of input."),
            VectorError::JunkAfterSparse { .. } => Some("Junk after closing."),
            _ => None,
        }
    }
}

impl fmt::Display for VectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message())?;
        if let Some(d) = self.detail() {
            write!(f, " (DETAIL: {d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for VectorError {}
