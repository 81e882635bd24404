//! Raising user-facing errors. The wording and SQLSTATE of every vector type
//! error live in `vecfmt::VectorError`; this only hands them to ereport.

use pgrx::pg_sys::elog::PgLogLevel;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::pg_sys::panic::ErrorReport;
use vecfmt::{SqlState, VectorError};

fn code(state: SqlState) -> PgSqlErrorCode {
    match state {
        SqlState::DataException => PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
        SqlState::InvalidTextRepresentation => PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
        SqlState::NumericValueOutOfRange => PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        SqlState::ProgramLimitExceeded => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        SqlState::InvalidParameterValue => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        SqlState::ProtocolViolation => PgSqlErrorCode::ERRCODE_PROTOCOL_VIOLATION,
        SqlState::NullValueNotAllowed => PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
    }
}

/// Raises `e` as an ERROR (message, DETAIL, SQLSTATE). Never returns.
#[cold]
pub fn raise(e: VectorError) -> ! {
    let mut report = ErrorReport::new(code(e.sqlstate()), e.message(), "vector_ext");
    if let Some(detail) = e.detail() {
        report = report.set_detail(detail);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// Unwraps a result or raises its error.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, VectorError> {
    #[inline]
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise(e),
        }
    }
}

/// A value that cannot be a valid datum of our types (corruption or a bug).
#[cold]
pub fn corrupted(what: &str) -> ! {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
        format!("invalid {what} data"),
        "vector_ext",
    )
    .report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}
