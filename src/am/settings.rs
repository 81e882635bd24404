//! Settings: the storage Postgres' GUC machinery writes, and enum values.

use pgrx::pg_sys;
use std::cell::UnsafeCell;
use std::ffi::{c_int, CStr};

/// A value Postgres' GUC machinery writes (through `ptr`) and the backend
/// reads. Only the backend's own thread ever touches it.
pub struct Setting<T: Copy>(UnsafeCell<T>);

// SAFETY: settings are read and written only on the backend thread (rayon
// threads never read them: builds copy what they need first).
unsafe impl<T: Copy> Sync for Setting<T> {}

impl<T: Copy> Setting<T> {
    pub const fn new(v: T) -> Self {
        Setting(UnsafeCell::new(v))
    }

    pub fn get(&self) -> T {
        // SAFETY: see the Sync impl; GUC assignment happens between calls.
        unsafe { *self.0.get() }
    }

    pub fn ptr(&self) -> *mut T {
        self.0.get()
    }
}

/// One value of an enum setting.
pub fn enum_entry(
    name: &'static std::ffi::CStr,
    val: std::ffi::c_int,
) -> pg_sys::config_enum_entry {
    pg_sys::config_enum_entry {
        name: name.as_ptr(),
        val,
        hidden: false,
    }
}

/// Defines a user-settable numeric setting through `pg_sys::$define`.
macro_rules! define_number {
    ($define:ident, $name:expr, $short:expr, $long:expr, $var:expr, $default:expr, $min:expr, $max:expr) => {
        pg_sys::$define(
            $name.as_ptr(),
            $short.as_ptr(),
            $long.map_or(std::ptr::null(), CStr::as_ptr),
            $var.ptr(),
            $default,
            $min,
            $max,
            pg_sys::GucContext::PGC_USERSET,
            0,
            None,
            None,
            None,
        )
    };
}

/// A user-settable integer setting (`PGC_USERSET`) stored in `var`.
///
/// # Safety
/// From _PG_init, on the backend thread.
pub unsafe fn define_int(
    name: &'static CStr,
    short: &'static CStr,
    long: Option<&'static CStr>,
    var: &'static Setting<c_int>,
    (default, min, max): (c_int, c_int, c_int),
) {
    // SAFETY: per the contract; names are static C strings, `var` a static.
    unsafe {
        define_number!(
            DefineCustomIntVariable,
            name,
            short,
            long,
            var,
            default,
            min,
            max
        )
    }
}

/// A user-settable real setting stored in `var`.
///
/// # Safety
/// As for `define_int`.
pub unsafe fn define_real(
    name: &'static CStr,
    short: &'static CStr,
    var: &'static Setting<f64>,
    (default, min, max): (f64, f64, f64),
) {
    // SAFETY: as in define_int.
    unsafe {
        define_number!(
            DefineCustomRealVariable,
            name,
            short,
            None,
            var,
            default,
            min,
            max
        )
    }
}

/// A user-settable enum setting stored in `var`, its first value the
/// default.
///
/// # Safety
/// As for `define_int`.
pub unsafe fn define_enum(
    name: &'static CStr,
    short: &'static CStr,
    var: &'static Setting<c_int>,
    values: &[(&'static CStr, c_int)],
) {
    let mut entries: Vec<pg_sys::config_enum_entry> =
        values.iter().map(|(n, v)| enum_entry(n, *v)).collect();
    entries.push(pg_sys::config_enum_entry {
        name: std::ptr::null(),
        val: 0,
        hidden: false,
    });
    // the GUC machinery keeps pointing at the entries
    let entries: &'static [pg_sys::config_enum_entry] = entries.leak();
    // SAFETY: as in define_int; the entries end with a NULL name.
    unsafe {
        pg_sys::DefineCustomEnumVariable(
            name.as_ptr(),
            short.as_ptr(),
            std::ptr::null(),
            var.ptr(),
            values[0].1,
            entries.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            0,
            None,
            None,
            None,
        )
    }
}

/// An integer reloption of the access method `kind` (changing it takes
/// an AccessExclusiveLock, as pgvector's do).
///
/// # Safety
/// As for `define_int`.
pub unsafe fn int_reloption(
    kind: pg_sys::relopt_kind::Type,
    name: &'static CStr,
    desc: &'static CStr,
    (default, min, max): (c_int, c_int, c_int),
) {
    // SAFETY: as in define_int.
    unsafe {
        pg_sys::add_int_reloption(
            kind,
            name.as_ptr(),
            desc.as_ptr(),
            default,
            min,
            max,
            pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE,
        )
    }
}

/// An enum reloption of the access method `kind`: its values by name
/// (the first the default), parsed as a c_int; PostgreSQL rejects any
/// other value with `detail` (AccessExclusiveLock to change, as above).
///
/// # Safety
/// As for `define_int`.
pub unsafe fn enum_reloption(
    kind: pg_sys::relopt_kind::Type,
    name: &'static CStr,
    desc: &'static CStr,
    values: &[(&'static CStr, c_int)],
    detail: &'static CStr,
) {
    let mut members: Vec<pg_sys::relopt_enum_elt_def> = values
        .iter()
        .map(|(n, v)| pg_sys::relopt_enum_elt_def {
            string_val: n.as_ptr(),
            symbol_val: *v,
        })
        .collect();
    members.push(pg_sys::relopt_enum_elt_def {
        string_val: std::ptr::null(),
        symbol_val: 0,
    });
    // the reloption machinery keeps pointing at the members
    let members: &'static mut [pg_sys::relopt_enum_elt_def] = members.leak();
    // SAFETY: as in define_int; the members end with a NULL name.
    unsafe {
        pg_sys::add_enum_reloption(
            kind,
            name.as_ptr(),
            desc.as_ptr(),
            members.as_mut_ptr(),
            values[0].1,
            detail.as_ptr(),
            pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE,
        )
    }
}

/// `amoptions`: parses integer and enum reloptions (both c_int) into a
/// palloc'd `T` (a `#[repr(C)]` struct starting with the varlena length),
/// each at its offset; NULL when there are none and `validate` is off.
///
/// # Safety
/// `fields` must describe `T`'s c_int fields exactly, with the type each
/// was registered as; `kind` must be the kind they were registered under.
pub unsafe fn parse_reloptions<T>(
    reloptions: pg_sys::Datum,
    validate: bool,
    kind: pg_sys::relopt_kind::Type,
    fields: &[(&'static CStr, pg_sys::relopt_type::Type, usize)],
) -> *mut pg_sys::bytea {
    let tab: Vec<pg_sys::relopt_parse_elt> = fields
        .iter()
        .map(|(name, opttype, offset)| crate::pg_compat::relopt_entry(name, *opttype, *offset))
        .collect();
    // SAFETY: per the contract; build_reloptions pallocs the result.
    unsafe {
        pg_sys::build_reloptions(
            reloptions,
            validate,
            kind,
            std::mem::size_of::<T>(),
            tab.as_ptr(),
            tab.len() as c_int,
        ) as *mut pg_sys::bytea
    }
}
