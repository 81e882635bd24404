//! The `vector` type's C symbols: each calls the shared body in `dense.rs`
//! with f32 elements. SQL declarations are in sql/vector_ext.sql.

use super::dense;
use crate::fmgr::{pg_function, Args};
use half::f16;
use pgrx::pg_sys;

type E = f32;

pg_function!(
    pg_finfo_vx_vector_in,
    vx_vector_in,
    |args| dense::text_in::<E>(args)
);
pg_function!(pg_finfo_vx_vector_out, vx_vector_out, |args| {
    dense::text_out::<E>(args)
});
pg_function!(pg_finfo_vx_vector_typmod_in, vx_vector_typmod_in, |args| {
    pg_sys::Datum::from(super::typmod_in(args, "vector"))
});
pg_function!(pg_finfo_vx_vector_recv, vx_vector_recv, |args| {
    dense::recv_f32(args)
});
pg_function!(pg_finfo_vx_vector_send, vx_vector_send, |args| {
    dense::send::<E>(args, |x, out| out.extend_from_slice(&x.to_be_bytes()))
});

pg_function!(
    pg_finfo_vx_vector,
    vx_vector,
    |args| dense::with_typmod::<E>(args)
);
pg_function!(pg_finfo_vx_array_to_vector, vx_array_to_vector, |args| {
    dense::from_array::<E>(args)
});
pg_function!(pg_finfo_vx_vector_to_float4, vx_vector_to_float4, |args| {
    dense::to_float4_array::<E>(args)
});
pg_function!(
    pg_finfo_vx_halfvec_to_vector,
    vx_halfvec_to_vector,
    |args| dense::convert::<f16, E>(args)
);

pg_function!(pg_finfo_vx_l2_distance, vx_l2_distance, |args| {
    dense::l2_distance::<E>(args)
});
pg_function!(
    pg_finfo_vx_vector_l2_squared_distance,
    vx_vector_l2_squared_distance,
    |args| dense::l2_squared_distance::<E>(args)
);
pg_function!(pg_finfo_vx_inner_product, vx_inner_product, |args| {
    dense::inner_product::<E>(args)
});
pg_function!(
    pg_finfo_vx_vector_negative_inner_product,
    vx_vector_negative_inner_product,
    |args| dense::negative_inner_product::<E>(args)
);
pg_function!(pg_finfo_vx_cosine_distance, vx_cosine_distance, |args| {
    dense::cosine_distance::<E>(args)
});
pg_function!(
    pg_finfo_vx_vector_spherical_distance,
    vx_vector_spherical_distance,
    |args| dense::spherical_distance::<E>(args)
);
pg_function!(pg_finfo_vx_l1_distance, vx_l1_distance, |args| {
    dense::l1_distance::<E>(args)
});

pg_function!(
    pg_finfo_vx_vector_dims,
    vx_vector_dims,
    |args| dense::dims::<E>(args)
);
pg_function!(
    pg_finfo_vx_vector_norm,
    vx_vector_norm,
    |args| dense::norm::<E>(args)
);
pg_function!(pg_finfo_vx_l2_normalize, vx_l2_normalize, |args| {
    dense::l2_normalize::<E>(args)
});
pg_function!(pg_finfo_vx_binary_quantize, vx_binary_quantize, |args| {
    dense::binary_quantize::<E>(args)
});
pg_function!(
    pg_finfo_vx_subvector,
    vx_subvector,
    |args| dense::subvector::<E>(args)
);

pg_function!(
    pg_finfo_vx_vector_add,
    vx_vector_add,
    |args| dense::add::<E>(args)
);
pg_function!(
    pg_finfo_vx_vector_sub,
    vx_vector_sub,
    |args| dense::sub::<E>(args)
);
pg_function!(
    pg_finfo_vx_vector_mul,
    vx_vector_mul,
    |args| dense::mul::<E>(args)
);
pg_function!(pg_finfo_vx_vector_concat, vx_vector_concat, |args| {
    dense::concat::<E>(args)
});

fn cmp(args: Args) -> i32 {
    dense::compare::<E>(&args)
}
pg_function!(pg_finfo_vx_vector_lt, vx_vector_lt, |args| (cmp(args) < 0)
    .into());
pg_function!(pg_finfo_vx_vector_le, vx_vector_le, |args| (cmp(args) <= 0)
    .into());
pg_function!(pg_finfo_vx_vector_eq, vx_vector_eq, |args| (cmp(args) == 0)
    .into());
pg_function!(pg_finfo_vx_vector_ne, vx_vector_ne, |args| (cmp(args) != 0)
    .into());
pg_function!(pg_finfo_vx_vector_ge, vx_vector_ge, |args| (cmp(args) >= 0)
    .into());
pg_function!(pg_finfo_vx_vector_gt, vx_vector_gt, |args| (cmp(args) > 0)
    .into());
pg_function!(pg_finfo_vx_vector_cmp, vx_vector_cmp, |args| cmp(args)
    .into());

pg_function!(pg_finfo_vx_vector_accum, vx_vector_accum, |args| {
    dense::accum::<E>(args, "vector_accum")
});
pg_function!(pg_finfo_vx_vector_combine, vx_vector_combine, |args| {
    super::array::combine_states(args)
});
pg_function!(pg_finfo_vx_vector_avg, vx_vector_avg, |args| {
    dense::avg::<E>(args, "vector_avg")
});
