//! The one matrix product every CPU kernel uses: the `gemm` crate natively (FMA, threads unless
//! called from a task of a parallel loop, see `pool.rs`), the register-blocked
//! `sgemm` in wasm (one thread, SIMD128).

/// `dst[i·dst_rs + j] += Σ_p lhs[i·k + p] · rhs[p·rhs_rs + j]` for `i < m`, `j < n`.
///
/// # Panics
/// When a slice is too short for the shape and strides given (checked before any access).
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul_acc(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    rhs: &[f32],
    rhs_rs: usize,
) {
    checked_product(m, n, k, dst, dst_rs, lhs, rhs, rhs_rs, true);
}

/// `dst[i·dst_rs + j] = Σ_p lhs[i·k + p] · rhs[p·rhs_rs + j]`: as [`matmul_acc`], without reading
/// `dst` first (so it need not be zeroed).
///
/// # Panics
/// As [`matmul_acc`].
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul_set(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    rhs: &[f32],
    rhs_rs: usize,
) {
    if k == 0 {
        // An empty sum: the products below would leave `dst` as it was.
        for row in dst.chunks_mut(dst_rs.max(1)).take(m) {
            let len = n.min(row.len());
            row[..len].fill(0.0);
        }
    }
    checked_product(m, n, k, dst, dst_rs, lhs, rhs, rhs_rs, false);
}

#[allow(clippy::too_many_arguments)]
fn checked_product(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    rhs: &[f32],
    rhs_rs: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    check_operands(m, n, k, dst_rs, lhs, rhs, rhs_rs);
    assert!(extent(m, n, dst_rs).is_some_and(|len| dst.len() >= len), "matmul: dst too short");
    product(m, n, k, dst, dst_rs, lhs, rhs, rhs_rs, accumulate);
}

/// Asserts that the row strides hold a row and that `lhs` (`m × k`) and `rhs` (`k × n` at row
/// stride `rhs_rs`) hold every value the product reads; `m`, `n` and `k` are not zero.
fn check_operands(m: usize, n: usize, k: usize, dst_rs: usize, lhs: &[f32], rhs: &[f32], rhs_rs: usize) {
    assert!(n <= dst_rs && n <= rhs_rs, "matmul: row strides shorter than a row");
    assert!(m.checked_mul(k).is_some_and(|len| lhs.len() >= len), "matmul: lhs too short");
    assert!(extent(k, n, rhs_rs).is_some_and(|len| rhs.len() >= len), "matmul: rhs too short");
}

/// The extent of `rows` (≥ 1) rows of `n` values at row stride `stride`; `None` where it
/// overflows, so that absurd shapes fail the asserts instead of wrapping around to a small number.
fn extent(rows: usize, n: usize, stride: usize) -> Option<usize> {
    (rows - 1).checked_mul(stride).and_then(|v| v.checked_add(n))
}

/// `dst[i·dst_rs + j] = Σ_p lhs[i·k + p] · rhs[p·rhs_rs + j]` for `i < m`, `j < n`, natively,
/// into memory given by pointer: for tasks that each write their own block of one matrix (a
/// slice of a block's rows would overlap the other tasks' blocks).
///
/// # Safety
/// `dst` is valid for writes of `(m - 1)·dst_rs + n` floats, and nothing else reads or writes
/// the `m × n` block at row stride `dst_rs` while this runs (values between the rows are not
/// touched).
///
/// # Panics
/// When `lhs` or `rhs` is too short for the shape and stride given (checked before any access).
#[cfg(not(target_family = "wasm"))]
#[allow(clippy::too_many_arguments)]
#[allow(unsafe_code)]
pub(super) unsafe fn product_into(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    lhs: &[f32],
    rhs: &[f32],
    rhs_rs: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(k > 0, "matmul: empty sum");
    check_operands(m, n, k, dst_rs, lhs, rhs, rhs_rs);
    // SAFETY: the inputs' extents are asserted above, `dst`'s is the caller's promise.
    unsafe { gemm_raw(m, n, k, dst, dst_rs, lhs, rhs, rhs_rs, false) }
}

#[cfg(target_family = "wasm")]
#[allow(clippy::too_many_arguments)]
fn product(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    rhs: &[f32],
    rhs_rs: usize,
    accumulate: bool,
) {
    super::sgemm::sgemm(m, n, k, lhs, rhs, rhs_rs, dst, dst_rs, accumulate);
}

/// Native only: `gemm` takes raw pointers and strides.
#[cfg(not(target_family = "wasm"))]
#[allow(clippy::too_many_arguments)]
#[allow(unsafe_code)]
fn product(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    rhs: &[f32],
    rhs_rs: usize,
    accumulate: bool,
) {
    // SAFETY: `checked_product` asserted that every element the call reads (lhs: m×k with row stride
    // k, rhs: k×n with row stride rhs_rs, column stride 1) and writes (dst: m×n with row stride
    // dst_rs) lies inside the three slices; `dst` is borrowed mutably, so it aliases neither input.
    unsafe { gemm_raw(m, n, k, dst.as_mut_ptr(), dst_rs, lhs, rhs, rhs_rs, accumulate) }
}

/// The `gemm` crate's product, `dst (+)= lhs · rhs`, row-major operands.
///
/// # Safety
/// `lhs` holds `m × k` values (row stride `k`), `rhs` `k × n` (row stride `rhs_rs`), `dst` is
/// valid for reads and writes of the `m × n` block at row stride `dst_rs` and aliases neither.
#[cfg(not(target_family = "wasm"))]
#[allow(clippy::too_many_arguments)]
#[allow(unsafe_code)]
unsafe fn gemm_raw(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    lhs: &[f32],
    rhs: &[f32],
    rhs_rs: usize,
    accumulate: bool,
) {
    // Inside a task of a parallel loop (a kernel's, or an image of a batch) the other threads
    // are busy already: one thread per product.
    let parallelism = match super::pool::products_may_fork() {
        true => gemm::Parallelism::Rayon(0),
        false => gemm::Parallelism::None,
    };
    // SAFETY: the caller's promise (the function's contract).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            rhs_rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "rhs too short")]
    fn short_operands_are_refused_before_any_access() {
        let mut dst = vec![0.0; 4];
        matmul_acc(2, 2, 3, &mut dst, 2, &[0.0; 6], &[0.0; 5], 2);
    }

    #[test]
    #[should_panic(expected = "lhs too short")]
    fn overflowing_shapes_are_refused() {
        let mut dst = vec![0.0; 4];
        matmul_acc(usize::MAX / 2, 1, 3, &mut dst, 1, &[0.0; 6], &[0.0; 3], 1);
    }

    #[test]
    fn set_overwrites_and_acc_adds() {
        // [[1, 2], [3, 4]] · [[5, 6], [7, 8]] = [[19, 22], [43, 50]], into rows of stride 3.
        let (lhs, rhs) = ([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]);
        let mut dst = vec![f32::NAN, f32::NAN, -1.0, f32::NAN, f32::NAN];
        matmul_set(2, 2, 2, &mut dst, 3, &lhs, &rhs, 2);
        assert_eq!(dst[..2], [19.0, 22.0]);
        assert_eq!(dst[2], -1.0, "outside the rows: untouched");
        assert_eq!(dst[3..], [43.0, 50.0]);
        matmul_acc(2, 2, 2, &mut dst, 3, &lhs, &rhs, 2);
        assert_eq!(dst, [38.0, 44.0, -1.0, 86.0, 100.0]);
        matmul_set(2, 2, 0, &mut dst, 3, &[], &[], 2);
        assert_eq!(dst, [0.0, 0.0, -1.0, 0.0, 0.0], "an empty sum is zero");
    }
}
