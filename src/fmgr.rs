//! Raw version-1 fmgr functions.
//!
//! The SQL surface is written by hand in `sql/vector_ext.sql` (it must match
//! pgvector name for name), so the C-callable functions are declared here
//! directly instead of through `#[pg_extern]`: no generated SQL, no per-call
//! argument boxing, and the hot distance functions stay a few instructions
//! away from the kernels. Every exported symbol is prefixed `vx_` so that it
//! cannot collide with another library loaded into the same backend.

use pgrx::pg_sys;
use std::ffi::CStr;

/// Declares `pg_finfo_<name>` (the V1 calling convention marker) and the
/// function `<name>`, whose body sees the arguments as `args: Args`.
macro_rules! pg_function {
    ($finfo:ident, $name:ident, |$args:ident| $body:expr) => {
        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
            const V1: ::pgrx::pg_sys::Pg_finfo_record =
                ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }

        #[unsafe(no_mangle)]
        #[::pgrx::pg_guard]
        pub unsafe extern "C-unwind" fn $name(
            fcinfo: ::pgrx::pg_sys::FunctionCallInfo,
        ) -> ::pgrx::pg_sys::Datum {
            // SAFETY: Postgres calls V1 functions with a valid fcinfo whose
            // nargs matches the SQL declaration in sql/vector_ext.sql.
            let $args = unsafe { $crate::fmgr::Args::new(fcinfo) };
            $body
        }
    };
}
pub(crate) use pg_function;

/// The arguments of one fmgr call. Valid for the duration of the call.
#[derive(Clone, Copy)]
pub struct Args {
    fcinfo: pg_sys::FunctionCallInfo,
}

impl Args {
    /// # Safety
    /// `fcinfo` must be the live FunctionCallInfo of the current call.
    pub unsafe fn new(fcinfo: pg_sys::FunctionCallInfo) -> Self {
        Args { fcinfo }
    }

    #[inline]
    pub fn datum(&self, i: usize) -> pg_sys::Datum {
        // SAFETY: fcinfo is live (Args::new) and SQL declares at least i+1
        // arguments for every caller of this helper.
        unsafe { (*self.fcinfo).args.as_slice((*self.fcinfo).nargs as usize)[i].value }
    }

    #[inline]
    pub fn i32(&self, i: usize) -> i32 {
        self.datum(i).value() as i32
    }

    /// A cstring argument (type input functions).
    pub fn cstr(&self, i: usize) -> &CStr {
        // SAFETY: SQL declares this argument as cstring, a NUL-terminated
        // string that lives for the whole call.
        unsafe { CStr::from_ptr(self.datum(i).cast_mut_ptr::<std::ffi::c_char>()) }
    }

    /// Marks the result NULL and returns the Datum to hand back.
    pub fn return_null(&self) -> pg_sys::Datum {
        // SAFETY: fcinfo is live; setting isnull is how V1 functions return NULL.
        unsafe { (*self.fcinfo).isnull = true };
        pg_sys::Datum::from(0usize)
    }

    /// The row a function declared with OUT parameters returns, from each
    /// column's text (None: NULL), matched by column name: a column
    /// `values` does not name is NULL, so an older declaration of the
    /// function (an earlier extension version's) still gets its columns.
    pub fn record(&self, values: &[(&str, Option<String>)]) -> pg_sys::Datum {
        let mut desc: pg_sys::TupleDesc = std::ptr::null_mut();
        // SAFETY: fcinfo is live; get_call_result_type reads the function's
        // declaration and sets `desc` for a composite result.
        let class =
            unsafe { pg_sys::get_call_result_type(self.fcinfo, std::ptr::null_mut(), &mut desc) };
        if class != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE {
            crate::am::error(
                pgrx::pg_sys::errcodes::PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "function returning record called in context that cannot accept type record".into(),
                None,
            );
        }
        // SAFETY: `desc` is the call's valid descriptor.
        let desc = unsafe { pg_sys::BlessTupleDesc(desc) };
        // SAFETY: as above.
        let natts = unsafe { (*desc).natts } as usize;
        let texts: Vec<Option<std::ffi::CString>> = (0..natts)
            .map(|i| {
                // SAFETY: i < natts.
                let att = unsafe { crate::pg_compat::attribute(desc, i) };
                // SAFETY: attname is a NUL-terminated NameData.
                let name = unsafe { CStr::from_ptr(att.attname.data.as_ptr()) };
                let name = name.to_str().unwrap_or("");
                values
                    .iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, v)| v.as_deref())
                    .map(|v| std::ffi::CString::new(v).expect("no NUL in a value"))
            })
            .collect();
        let mut ptrs: Vec<*mut std::ffi::c_char> = texts
            .iter()
            .map(|t| {
                t.as_ref()
                    .map_or(std::ptr::null_mut(), |c| c.as_ptr().cast_mut())
            })
            .collect();
        // SAFETY: one NUL-terminated text or NULL per attribute of `desc`,
        // alive until the tuple is built (its input functions copy them).
        unsafe {
            let meta = pg_sys::TupleDescGetAttInMetadata(desc);
            let tuple = pg_sys::BuildTupleFromCStrings(meta, ptrs.as_mut_ptr());
            pg_sys::HeapTupleHeaderGetDatum((*tuple).t_data)
        }
    }

    /// The aggregate memory context when called as an aggregate transition or
    /// combine function, so the state may be updated in place.
    pub fn aggregate_context(&self) -> Option<pg_sys::MemoryContext> {
        let mut cx: pg_sys::MemoryContext = std::ptr::null_mut();
        // SAFETY: AggCheckCallContext only inspects fcinfo->context.
        let kind = unsafe { pg_sys::AggCheckCallContext(self.fcinfo, &mut cx) };
        (kind != 0).then_some(cx)
    }
}

#[inline]
pub fn float8_datum(v: f64) -> pg_sys::Datum {
    pg_sys::Datum::from(v.to_bits())
}

#[inline]
pub fn float8_from_datum(d: pg_sys::Datum) -> f64 {
    f64::from_bits(d.value() as u64)
}

#[inline]
pub fn float4_from_datum(d: pg_sys::Datum) -> f32 {
    f32::from_bits(d.value() as u32)
}

#[inline]
pub fn float4_datum(v: f32) -> pg_sys::Datum {
    pg_sys::Datum::from(v.to_bits())
}
