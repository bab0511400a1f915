//! A detection head's output, from one plane per value to one row per cell.

use super::window::{for_each_plane, zeros};

/// `[b, cells, width]` from three levels `[b, width, h, w]` (`sides` their `(h, w)`): per image
/// the cells of each level in turn, row-major, the first `classes` values of every cell through
/// the sigmoid. In parallel over the levels' rows of cells natively; each task transposes one row
/// (`width` planes' runs of `w` values into `w` cells) while it is in cache, then activates it.
pub(super) fn cells(
    levels: [&[f32]; 3],
    sides: &[(usize, usize)],
    batch: usize,
    width: usize,
    classes: usize,
) -> Vec<f32> {
    assert!(classes <= width, "head cells: {classes} classes in {width} values");
    assert!(
        levels.iter().zip(sides).all(|(level, (h, w))| level.len() == batch * width * h * w),
        "head cells: levels of {:?} values for {sides:?}",
        levels.map(<[f32]>::len)
    );
    let cells: usize = sides.iter().map(|(h, w)| h * w).sum();
    let mut out = zeros(batch * cells * width);
    if cells == 0 || width == 0 {
        return out;
    }
    for (n, image) in out.chunks_exact_mut(cells * width).enumerate() {
        let mut first = 0;
        for (level, &(h, w)) in levels.iter().zip(sides) {
            let hw = h * w;
            if hw == 0 {
                continue;
            }
            let planes = &level[n * width * hw..][..width * hw];
            for_each_plane(
                &mut image[first * width..][..hw * width],
                w * width,
                #[inline(always)]
                |row, dst, _| {
                    for (j, plane) in planes.chunks_exact(hw).enumerate() {
                        for (cell, &v) in dst.chunks_exact_mut(width).zip(&plane[row * w..][..w]) {
                            cell[j] = v;
                        }
                    }
                    for cell in dst.chunks_exact_mut(width) {
                        super::sigmoid_in_place(&mut cell[..classes]);
                    }
                },
            );
            first += hw;
        }
    }
    out
}
