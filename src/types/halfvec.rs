//! The `halfvec` type's C symbols: each calls the shared body in
//! `dense.rs` with binary16 elements. SQL declarations are in
//! sql/vector_ext.sql.

use super::dense as d;
use crate::fmgr::{pg_function, Args};
use half::f16;
use pgrx::pg_sys;

type H = f16;

pg_function!(pg_finfo_vx_halfvec_in, vx_halfvec_in, |a| d::text_in::<H>(
    a
));
pg_function!(
    pg_finfo_vx_halfvec_out,
    vx_halfvec_out,
    |a| d::text_out::<H>(a)
);
pg_function!(pg_finfo_vx_halfvec_typmod_in, vx_halfvec_typmod_in, |a| {
    pg_sys::Datum::from(super::typmod_in(a, "halfvec"))
});
pg_function!(pg_finfo_vx_halfvec_recv, vx_halfvec_recv, |a| d::recv_f16(
    a
));
pg_function!(pg_finfo_vx_halfvec_send, vx_halfvec_send, |a| {
    d::send::<H>(a, |x, out| {
        out.extend_from_slice(&x.to_bits().to_be_bytes())
    })
});

pg_function!(pg_finfo_vx_halfvec, vx_halfvec, |a| d::with_typmod::<H>(a));
pg_function!(pg_finfo_vx_array_to_halfvec, vx_array_to_halfvec, |a| {
    d::from_array::<H>(a)
});
pg_function!(pg_finfo_vx_halfvec_to_float4, vx_halfvec_to_float4, |a| {
    d::to_float4_array::<H>(a)
});
pg_function!(pg_finfo_vx_vector_to_halfvec, vx_vector_to_halfvec, |a| {
    d::convert::<f32, H>(a)
});

pg_function!(
    pg_finfo_vx_halfvec_l2_distance,
    vx_halfvec_l2_distance,
    |a| d::l2_distance::<H>(a)
);
pg_function!(
    pg_finfo_vx_halfvec_l2_squared_distance,
    vx_halfvec_l2_squared_distance,
    |a| d::l2_squared_distance::<H>(a)
);
pg_function!(
    pg_finfo_vx_halfvec_inner_product,
    vx_halfvec_inner_product,
    |a| d::inner_product::<H>(a)
);
pg_function!(
    pg_finfo_vx_halfvec_negative_inner_product,
    vx_halfvec_negative_inner_product,
    |a| d::negative_inner_product::<H>(a)
);
pg_function!(
    pg_finfo_vx_halfvec_cosine_distance,
    vx_halfvec_cosine_distance,
    |a| d::cosine_distance::<H>(a)
);
pg_function!(
    pg_finfo_vx_halfvec_spherical_distance,
    vx_halfvec_spherical_distance,
    |a| d::spherical_distance::<H>(a)
);
pg_function!(
    pg_finfo_vx_halfvec_l1_distance,
    vx_halfvec_l1_distance,
    |a| d::l1_distance::<H>(a)
);

pg_function!(
    pg_finfo_vx_halfvec_vector_dims,
    vx_halfvec_vector_dims,
    |a| d::dims::<H>(a)
);
pg_function!(
    pg_finfo_vx_halfvec_l2_norm,
    vx_halfvec_l2_norm,
    |a| d::norm::<H>(a)
);
pg_function!(
    pg_finfo_vx_halfvec_l2_normalize,
    vx_halfvec_l2_normalize,
    |a| d::l2_normalize::<H>(a)
);
pg_function!(
    pg_finfo_vx_halfvec_binary_quantize,
    vx_halfvec_binary_quantize,
    |a| d::binary_quantize::<H>(a)
);
pg_function!(pg_finfo_vx_halfvec_subvector, vx_halfvec_subvector, |a| {
    d::subvector::<H>(a)
});

pg_function!(pg_finfo_vx_halfvec_add, vx_halfvec_add, |a| d::add::<H>(a));
pg_function!(pg_finfo_vx_halfvec_sub, vx_halfvec_sub, |a| d::sub::<H>(a));
pg_function!(pg_finfo_vx_halfvec_mul, vx_halfvec_mul, |a| d::mul::<H>(a));
pg_function!(
    pg_finfo_vx_halfvec_concat,
    vx_halfvec_concat,
    |a| d::concat::<H>(a)
);

fn order(a: Args) -> i32 {
    d::compare::<H>(&a)
}
pg_function!(pg_finfo_vx_halfvec_lt, vx_halfvec_lt, |a| (order(a) < 0)
    .into());
pg_function!(pg_finfo_vx_halfvec_le, vx_halfvec_le, |a| (order(a) <= 0)
    .into());
pg_function!(pg_finfo_vx_halfvec_eq, vx_halfvec_eq, |a| (order(a) == 0)
    .into());
pg_function!(pg_finfo_vx_halfvec_ne, vx_halfvec_ne, |a| (order(a) != 0)
    .into());
pg_function!(pg_finfo_vx_halfvec_ge, vx_halfvec_ge, |a| (order(a) >= 0)
    .into());
pg_function!(pg_finfo_vx_halfvec_gt, vx_halfvec_gt, |a| (order(a) > 0)
    .into());
pg_function!(pg_finfo_vx_halfvec_cmp, vx_halfvec_cmp, |a| order(a).into());

pg_function!(pg_finfo_vx_halfvec_accum, vx_halfvec_accum, |a| {
    d::accum::<H>(a, "halfvec_accum")
});
pg_function!(pg_finfo_vx_halfvec_avg, vx_halfvec_avg, |a| d::avg::<H>(
    a,
    "halfvec_avg"
));
