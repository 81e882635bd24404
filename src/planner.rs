//! What a distance costs the planner.
//!
//! Postgres charges every operator call `cpu_operator_cost` (times the
//! function's COST, 1 by default), the price of comparing two integers. A
//! distance over 1,536 dimensions costs about a hundred times that, and the
//! planner, seeing a sequential scan and sort of a few thousand such rows as
//! cheap, preferred it to an hnsw index that computes a tenth as many
//! distances (2,000 rows of 1,536 dimensions: 1.22 ms sorted against 0.50 ms
//! through the index; `bash bench/run.sh planner`, bench/README.md).
//!
//! The distance functions behind the operators carry a planner support
//! function (`vector_ext_distance_support`) that prices each call by the
//! dimensions of its arguments' type, and the index cost estimates charge
//! the distances a search computes at the same price.

use crate::fmgr::pg_function;
use pgrx::pg_sys;

/// Dimensions one `cpu_operator_cost` pays for, beyond the call itself:
/// measured sequential scans with sort cost about 100 ns a row plus 0.8 ns
/// a dimension (3 to 2,000 dimensions, 1,000 to 1,000,000 rows), and the
/// planner prices a row of such a plan at cpu_tuple_cost + cpu_operator_cost
/// + a sort comparison (0.0175, so 0.0025 stands for about 14 ns).
const DIMS_PER_OPERATOR: f64 = 18.0;

/// Bits one `cpu_operator_cost` pays for in a Hamming or Jaccard distance
/// (popcounts of 64 bits at a time).
const BITS_PER_OPERATOR: f64 = 512.0;

/// What the planner's cost units say one distance between vectors of this
/// kind costs: `bits` for bit strings, else the dense dimensions. None when
/// the dimensions are unknown (a column without typmod).
pub fn distance_cost(dims: i32, bits: bool) -> Option<f64> {
    if dims <= 0 {
        return None;
    }
    // SAFETY: reading a planner GUC on the backend thread.
    let op = unsafe { pg_sys::cpu_operator_cost };
    let per = if bits {
        BITS_PER_OPERATOR
    } else {
        DIMS_PER_OPERATOR
    };
    Some(op * (1.0 + dims as f64 / per))
}

/// The arguments of a call node the planner costs (a function call or an
/// operator), or nothing for another node.
///
/// # Safety
/// `node` must be NULL or a valid planner node.
unsafe fn call_args(node: *mut pg_sys::Node) -> *mut pg_sys::List {
    if node.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: per the contract; the tag says which struct it is.
    unsafe {
        match (*node).type_ {
            pg_sys::NodeTag::T_FuncExpr => (*(node as *mut pg_sys::FuncExpr)).args,
            pg_sys::NodeTag::T_OpExpr => (*(node as *mut pg_sys::OpExpr)).args,
            _ => std::ptr::null_mut(),
        }
    }
}

// vector_ext_distance_support(internal) RETURNS internal: answers
// SupportRequestCost with the per-call cost of the distance's dimensions
// (the typmod of either argument: vector(n), halfvec(n), bit(n)); declines
// every other request, and calls whose dimensions the planner cannot know.
pg_function!(pg_finfo_vx_distance_support, vx_distance_support, |args| {
    let none = pg_sys::Datum::from(0usize);
    let request = args.datum(0).cast_mut_ptr::<pg_sys::Node>();
    // SAFETY: the planner hands a support function a valid request
    // node; SupportRequestCost is the struct its tag names, and its
    // call node is NULL or an expression whose args are expressions.
    unsafe {
        if request.is_null() || (*request).type_ != pg_sys::NodeTag::T_SupportRequestCost {
            return none;
        }
        let req = request as *mut pg_sys::SupportRequestCost;
        let list = call_args((*req).node);
        let n = if list.is_null() { 0 } else { (*list).length };
        let mut cost = None;
        for i in 0..n {
            let arg = (*(*list).elements.add(i as usize)).ptr_value as *mut pg_sys::Node;
            let bits = pg_sys::exprType(arg) == pg_sys::BITOID;
            cost = cost.or(distance_cost(pg_sys::exprTypmod(arg), bits));
        }
        let Some(cost) = cost else {
            return none;
        };
        (*req).startup = 0.0;
        (*req).per_tuple = cost;
        pg_sys::Datum::from(req)
    }
});
