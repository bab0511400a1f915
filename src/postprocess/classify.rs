//! Softmax and top-k for classifier logits.

/// Numerically stable softmax (the max is subtracted first; sums in f64).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&v| f64::from(v - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / sum) as f32).collect()
}

/// The `k` largest values as `(index, value)`, best first; ties keep the lower index first.
/// NaNs sort last (`f32::total_cmp`), so a corrupt output cannot panic.
pub fn top_k(values: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| {
        let (va, vb) = (values[a], values[b]);
        match (va.is_nan(), vb.is_nan()) {
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => vb.total_cmp(&va).then(a.cmp(&b)),
        }
    });
    order.truncate(k);
    order.into_iter().map(|i| (i, values[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_is_stable() {
        let p = softmax(&[1000.0, 1000.0, 0.0]);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6 && p[2] < 1e-30);
        let q = softmax(&[1.0, 2.0, 3.0]);
        assert!((q.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(q[2] > q[1] && q[1] > q[0]);
    }

    #[test]
    fn top_k_orders_best_first_with_stable_ties() {
        assert_eq!(top_k(&[0.1, 0.5, 0.5, 0.2], 3), vec![(1, 0.5), (2, 0.5), (3, 0.2)]);
        assert_eq!(top_k(&[0.1], 5), vec![(0, 0.1)]);
        assert!(top_k(&[], 3).is_empty());
        let with_nan = top_k(&[f32::NAN, 0.3, 0.7], 2);
        assert_eq!(with_nan, vec![(2, 0.7), (1, 0.3)]);
    }
}
