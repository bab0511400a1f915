//! The one matrix product every CPU kernel uses: the `gemm` crate natively (FMA, threads — the
//! kernels flex itself uses), the register-blocked `sgemm` in wasm (one thread, SIMD128).

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
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    // The extent each operand must have; `checked_mul` so that absurd shapes fail the assert
    // instead of wrapping around to a small number.
    let extent = |rows: usize, stride: usize| (rows - 1).checked_mul(stride).and_then(|v| v.checked_add(n));
    assert!(n <= dst_rs && n <= rhs_rs, "matmul_acc: row strides shorter than a row");
    assert!(m.checked_mul(k).is_some_and(|len| lhs.len() >= len), "matmul_acc: lhs too short");
    assert!(extent(k, rhs_rs).is_some_and(|len| rhs.len() >= len), "matmul_acc: rhs too short");
    assert!(extent(m, dst_rs).is_some_and(|len| dst.len() >= len), "matmul_acc: dst too short");
    product(m, n, k, dst, dst_rs, lhs, rhs, rhs_rs);
}

#[cfg(target_family = "wasm")]
#[allow(clippy::too_many_arguments)]
fn product(m: usize, n: usize, k: usize, dst: &mut [f32], dst_rs: usize, lhs: &[f32], rhs: &[f32], rhs_rs: usize) {
    super::sgemm::sgemm_acc(m, n, k, lhs, rhs, rhs_rs, dst, dst_rs);
}

/// The crate's one `unsafe` call, native only: `gemm` takes raw pointers and strides.
#[cfg(not(target_family = "wasm"))]
#[allow(clippy::too_many_arguments)]
#[allow(unsafe_code)]
fn product(m: usize, n: usize, k: usize, dst: &mut [f32], dst_rs: usize, lhs: &[f32], rhs: &[f32], rhs_rs: usize) {
    // SAFETY: `matmul_acc` asserted that every element the call reads (lhs: m×k with row stride
    // k, rhs: k×n with row stride rhs_rs, column stride 1) and writes (dst: m×n with row stride
    // dst_rs) lies inside the three slices; `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            true,
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
            gemm::Parallelism::Rayon(0),
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
}
