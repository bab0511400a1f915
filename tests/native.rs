//! Native integration tests: real weights against the independent reference data
//! (`tests/fixtures/`, copied from the reference set), on the CPU backend and on wgpu.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::{Device, Tensor, TensorData};
use serde_json::Value;
use sightline::postprocess::{iou, softmax};
use sightline::preprocess::{ChannelOrder, Normalize, Resize, preprocess};
use sightline::{
    ClassifierOptions, DEFAULT_PRECISION, DetectorOptions, ErrorKind, Image, ImageClassifier, ObjectDetector,
    Precision, cpu_device, wgpu_device,
};

/// The reference images: fixture folder and image file. PNGs decode exactly everywhere; JPEG
/// decoders differ by ±1 level, so results from the JPEG files are checked with compare.py's
/// `--loose` rule.
const FIXTURES: [(&str, &str); 4] =
    [("chelsea", "chelsea.png"), ("coffee", "coffee.png"), ("dog", "dog.jpg"), ("person", "person.jpg")];
const IMAGES: [&str; 4] = [FIXTURES[0].0, FIXTURES[1].0, FIXTURES[2].0, FIXTURES[3].0];
const MODES: [(&str, Resize); 2] = [("crop224", Resize::CenterCrop), ("stretch224", Resize::Stretch)];

/// Reference bound for logits on the CPU backend (float32 vs the float64 reference).
const LOGIT_TOL_CPU: f32 = 1e-3;
/// On wgpu (lavapipe) the GPU kernels reorder float sums; the same bound holds, see the test.
const LOGIT_TOL_WGPU: f32 = 1e-3;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// A minimal `.npy` reader (little-endian f4 or u1, C order).
fn npy(path: &Path) -> (Vec<usize>, Vec<u8>, String) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{} is not .npy", path.display());
    let (len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
    };
    let header = std::str::from_utf8(&bytes[start..start + len]).expect("utf8 header");
    assert!(header.contains("'fortran_order': False"));
    let descr = header.split("'descr': '").nth(1).and_then(|s| s.split('\'').next()).expect("descr");
    let shape_str = header.split("'shape': (").nth(1).and_then(|s| s.split(')').next()).expect("shape");
    let shape = shape_str.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse().expect("dim")).collect();
    (shape, bytes[start + len..].to_vec(), descr.to_owned())
}

fn npy_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let (shape, data, descr) = npy(path);
    assert_eq!(descr, "<f4", "{}", path.display());
    let values = data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (shape, values)
}

fn npy_rgb(name: &str) -> (Vec<u8>, u32, u32) {
    let (shape, data, descr) = npy(&fixture(&format!("{name}/image_rgb_u8.npy")));
    assert_eq!(descr, "|u1");
    (data, shape[1] as u32, shape[0] as u32)
}

/// A reference JSON file of `tests/fixtures`.
fn reference_json(path: &str) -> Value {
    let text = std::fs::read_to_string(fixture(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs the reference checker `compare.py` on a project JSON file; fails the test on FAIL.
fn compare_py(project: &Path, reference: &Path, loose: bool) {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("tests/tools/compare.py")).arg(project).arg(reference);
    if loose {
        cmd.arg("--loose");
    }
    let out = cmd.output().expect("run compare.py");
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(out.status.success(), "compare.py failed for {}:\n{report}", project.display());
}

/// Runs the CLI with `args`; returns (exit status, stdout, stderr).
fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let run = Command::new(env!("CARGO_BIN_EXE_sightline")).args(args).output().expect("run the CLI");
    (
        run.status.code(),
        String::from_utf8_lossy(&run.stdout).into_owned(),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

/// Runs the CLI with its stdout closed before it writes (as `| head -c0` would): exit status and stderr.
fn cli_with_stdout_closed(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sightline-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The weights of `model` in `precision` (`models/<model>.<precision>.safetensors`).
fn weights(model: &str, precision: Precision) -> Vec<u8> {
    let path = root().join(format!("models/{model}.{}.safetensors", precision.name()));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `python3 scripts/fetch_weights.py` first", path.display()))
}

/// The classifier's f32 weights: the reference parity tests run on the source's own values.
fn classifier_weights() -> Vec<u8> {
    weights("efficientnet-lite0", Precision::F32)
}

#[test]
fn preprocessing_reproduces_reference_inputs() {
    let norm = Normalize { order: ChannelOrder::Rgb, mean: [127.0; 3], std: [128.0; 3] };
    for name in IMAGES {
        let (px, w, h) = npy_rgb(name);
        let image = Image::from_rgb(&px, w, h).expect("valid image");
        for (mode, resize) in MODES {
            let (shape, expected) = npy_f32(&fixture(&format!("{name}/cls_{mode}_input.npy")));
            assert_eq!(shape, vec![1, 3, 224, 224]);
            let got = preprocess(&image, 224, resize, &norm);
            let d = max_abs_diff(&got.data, &expected);
            assert!(d <= 1e-4, "{name}/{mode}: preprocessing differs by {d}");
        }
    }
}

/// Issue 14: on a GPU device the frame is resampled by a kernel from its uploaded bytes; it must
/// equal the CPU preprocessing within 1e-4 on every fixture (RGB as decoded, and as RGBA) and on
/// extreme shapes, in every mode both tasks use.
#[test]
fn gpu_preprocessing_equals_cpu_preprocessing() {
    use sightline::model::gpu_input;
    let device = wgpu_device().expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)");
    let classifier = Normalize { order: ChannelOrder::Rgb, mean: [127.0; 3], std: [128.0; 3] };
    let detector =
        Normalize { order: ChannelOrder::Bgr, mean: [103.53, 116.28, 123.675], std: [57.375, 57.12, 58.395] };
    let cases =
        [(224, Resize::CenterCrop, classifier), (224, Resize::Stretch, classifier), (416, Resize::Stretch, detector)];
    let check = |image: &Image<'_>, what: &str| {
        for (size, resize, norm) in cases {
            let want = preprocess(image, size, resize, &norm);
            let (got, transform) = gpu_input(image, size, resize, &norm, &device).expect("a GPU device");
            assert_eq!(transform, want.transform, "{what}: transform");
            let got = to_vec(got);
            let d = max_abs_diff(&got, &want.data);
            assert!(d <= 1e-4, "{what} {size} {resize:?} {:?}: GPU preprocessing differs by {d}", norm.order);
        }
    };
    let rgba = |rgb: &[u8]| rgb.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect::<Vec<u8>>();
    for name in IMAGES {
        let (px, w, h) = npy_rgb(name);
        check(&Image::from_rgb(&px, w, h).expect("valid"), &format!("{name} rgb"));
        let px = rgba(&px);
        check(&Image::from_rgba(&px, w, h).expect("valid"), &format!("{name} rgba"));
    }
    let mut state = 0x2545_f491_u32;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect()
    };
    for (w, h) in [(1, 1), (3, 5000), (5000, 3), (16384, 1), (1, 16384), (7, 5)] {
        let px = noise(w * h * 3);
        check(&Image::from_rgb(&px, w as u32, h as u32).expect("valid"), &format!("{w}x{h} rgb"));
        let px = rgba(&px);
        check(&Image::from_rgba(&px, w as u32, h as u32).expect("valid"), &format!("{w}x{h} rgba"));
    }
}

fn check_logits(classifier: &ImageClassifier, tol: f32, backend: &str) {
    for name in IMAGES {
        for (mode, _) in MODES {
            let (_, input) = npy_f32(&fixture(&format!("{name}/cls_{mode}_input.npy")));
            let (shape, expected) = npy_f32(&fixture(&format!("{name}/cls_{mode}_logits.npy")));
            assert_eq!(shape, vec![1, 1000]);
            let got: Vec<f32> = classifier.forward(input).into_data().try_into_vec().expect("f32 logits");
            let d = max_abs_diff(&got, &expected);
            println!("{backend} {name}/{mode}: max |Δlogit| = {d:.2e}");
            assert!(d <= tol, "{backend} {name}/{mode}: logits differ by {d} (bound {tol})");
        }
    }
}

#[test]
fn classifier_logits_match_reference_on_cpu() {
    let c = ImageClassifier::from_bytes(&classifier_weights(), &cpu_device(), ClassifierOptions::default())
        .expect("weights load");
    check_logits(&c, LOGIT_TOL_CPU, "cpu");
}

#[test]
fn classifier_logits_match_reference_on_wgpu() {
    // CI runs this on Mesa's lavapipe (software Vulkan, installed by scripts/setup.sh).
    let device = wgpu_device().expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)");
    let c = ImageClassifier::from_bytes(&classifier_weights(), &device, ClassifierOptions::default())
        .expect("weights load");
    check_logits(&c, LOGIT_TOL_WGPU, "wgpu");
}

#[test]
fn classify_end_to_end_gives_reference_top1() {
    let c = ImageClassifier::from_bytes(&classifier_weights(), &cpu_device(), ClassifierOptions::default())
        .expect("weights load");
    for name in IMAGES {
        let (px, w, h) = npy_rgb(name);
        let result = c.classify(&Image::from_rgb(&px, w, h).expect("valid")).expect("classify");
        let reference = reference_json(&format!("{name}/cls_crop224.json"));
        let top1 = reference["top"][0]["index"].as_u64().expect("reference top-1") as usize;
        assert_eq!(result.classes[0].index, top1, "{name}: {:?}", result.classes[0]);
        assert_eq!(result.classes.len(), 5);
        assert!(result.classes.windows(2).all(|p| p[0].score >= p[1].score));
    }
}

#[test]
fn bad_images_are_named_errors_and_the_classifier_keeps_working() {
    let c = ImageClassifier::from_bytes(&classifier_weights(), &cpu_device(), ClassifierOptions::default())
        .expect("weights load");
    assert_eq!(Image::from_rgba(&[0; 10], 2, 2).unwrap_err().kind(), ErrorKind::InvalidImage);
    assert_eq!(Image::from_rgba(&[], 0, 0).unwrap_err().kind(), ErrorKind::InvalidImage);
    // A 1×1 image is valid and classifiable (upscaled).
    let one = [200u8, 10, 10, 255];
    let r = c.classify(&Image::from_rgba(&one, 1, 1).expect("valid")).expect("1x1 classifies");
    assert_eq!(r.classes.len(), 5);
    // Extreme aspect ratio.
    let strip = vec![90u8; 3000 * 2 * 4];
    c.classify(&Image::from_rgba(&strip, 3000, 2).expect("valid")).expect("strip classifies");
}

#[test]
fn corrupt_truncated_or_mismatched_weights_are_model_load_errors() {
    let good = classifier_weights();
    let device = cpu_device();
    let load = |bytes: &[u8]| ImageClassifier::from_bytes(bytes, &device, ClassifierOptions::default());
    for bytes in [&good[..good.len() / 2], &good[..7], &[][..], b"not a weights file at all"] {
        let e = load(bytes).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ModelLoad, "{e}");
    }
    // Rename one tensor: the error names the missing one.
    let header_len = u64::from_le_bytes(good[..8].try_into().expect("8 bytes")) as usize;
    let header = std::str::from_utf8(&good[8..8 + header_len]).expect("utf8");
    let renamed = header.replacen("\"_fc.bias\"", "\"_fc.bia_\"", 1);
    let mut bytes = good[..8].to_vec();
    bytes.extend_from_slice(renamed.as_bytes());
    bytes.extend_from_slice(&good[8 + header_len..]);
    let e = load(&bytes).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelLoad);
    assert!(e.message().contains("_fc.bias"), "{e}");
    // Change one shape in a well-formed file: the error names the tensor and both shapes.
    let file = safetensors::SafeTensors::deserialize(&good).expect("valid file");
    let short_bias = vec![0u8; 999 * 4];
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            if name == "_fc.bias" {
                let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![999], &short_bias)
                    .expect("view");
                (name, view)
            } else {
                (name, view)
            }
        })
        .collect();
    let bytes = safetensors::serialize(tensors, None).expect("serialise");
    let e = load(&bytes).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelLoad, "{e}");
    assert!(
        e.message().contains("`_fc.bias`") && e.message().contains("[999]") && e.message().contains("[1000]"),
        "{e}"
    );
    // A negative BatchNorm variance (it would fold into NaN weights): refused, naming the tensor.
    let mut variance: Vec<u8> = file.tensor("_bn0.running_var").expect("a variance").data().to_vec();
    variance[..4].copy_from_slice(&(-0.5f32).to_le_bytes());
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            if name == "_bn0.running_var" {
                let shape = view.shape().to_vec();
                (name, safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, &variance).expect("view"))
            } else {
                (name, view)
            }
        })
        .collect();
    let e = load(&safetensors::serialize(tensors, None).expect("serialise")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelLoad, "{e}");
    assert!(e.message().contains("`_bn0.running_var`") && e.message().contains("negative variance"), "{e}");
    // Invalid options are rejected before anything is loaded.
    let e = ImageClassifier::from_bytes(&good, &device, ClassifierOptions::default().with_max_results(0)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidOptions);
}

/// `sightline classify --json` on every fixture, checked by the reference `compare.py`:
/// strict on the PNGs (exact decode), `--loose` on the JPEGs (decoder differs by ±1 level).
#[test]
fn cli_json_passes_compare_py() {
    let out = scratch_dir("cli");
    for (name, file) in FIXTURES {
        for (mode, flag) in [("crop224", "crop"), ("stretch224", "stretch")] {
            let image = fixture(&format!("images/{file}"));
            let (status, stdout, stderr) =
                cli(&["classify", "--json", "--resize", flag, image.to_str().expect("utf8")]);
            assert_eq!(status, Some(0), "{stderr}");
            assert_eq!(stdout.trim().lines().count(), 1, "exactly one JSON object: {stdout}");
            let parsed: Value = serde_json::from_str(&stdout).expect("valid JSON");
            assert_eq!(parsed["top"].as_array().map(Vec::len), Some(5), "{parsed}");
            let project = out.join(format!("{name}_{mode}.json"));
            std::fs::write(&project, stdout).expect("write");
            compare_py(&project, &fixture(&format!("{name}/cls_{mode}.json")), file.ends_with(".jpg"));
        }
    }
    // No image → a runtime error (status 1) with a message, not a panic.
    let (status, _, stderr) = cli(&["classify", "/nonexistent.png"]);
    assert_eq!(status, Some(1));
    assert!(stderr.contains("cannot read /nonexistent.png"), "{stderr}");
}

/// The start of a PNG whose header declares `width`×`height` (a valid IHDR chunk, no pixels).
fn png_header(width: u32, height: u32) -> Vec<u8> {
    // A chunk: length, type, data, CRC-32 (IEEE) of type and data, which PNG decoders check.
    let chunk = |kind: &[u8], data: &[u8]| {
        let body = [kind, data].concat();
        let crc = !body.iter().fold(!0u32, |c, &b| {
            (0..8).fold(c ^ u32::from(b), |c, _| if c & 1 == 1 { (c >> 1) ^ 0xedb8_8320 } else { c >> 1 })
        });
        [&(data.len() as u32).to_be_bytes()[..], &body, &crc.to_be_bytes()].concat()
    };
    let ihdr = [&width.to_be_bytes()[..], &height.to_be_bytes(), &[8, 2, 0, 0, 0]].concat(); // 8-bit RGB
    [&b"\x89PNG\r\n\x1a\n"[..], &chunk(b"IHDR", &ihdr), &chunk(b"IDAT", &[]), &chunk(b"IEND", &[])].concat()
}

/// Issue 10: a decompression bomb is refused from its header, fast and in little memory. The
/// CLI runs under a Python wrapper that reports the child's peak memory (ru_maxrss, KiB).
#[test]
fn cli_refuses_a_decompression_bomb_before_decoding() {
    let bomb = scratch_dir("bomb").join("bomb.png");
    std::fs::write(&bomb, png_header(30_000, 30_000)).expect("write");
    let measure = r#"
import resource, subprocess, sys, time
t = time.monotonic()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(p.returncode, round(time.monotonic() - t, 3), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(p.stderr)
"#;
    let out = Command::new("python3")
        .args(["-c", measure, env!("CARGO_BIN_EXE_sightline"), "classify"])
        .arg(&bomb)
        .output()
        .expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut fields = text.split_whitespace();
    let status: i32 = fields.next().and_then(|v| v.parse().ok()).expect("status");
    let seconds: f64 = fields.next().and_then(|v| v.parse().ok()).expect("seconds");
    let peak_kib: u64 = fields.next().and_then(|v| v.parse().ok()).expect("peak memory");
    println!("bomb: status {status}, {seconds} s, peak {} MB", peak_kib / 1024);
    assert_eq!(status, 1, "{text}");
    assert!(text.contains("30000x30000") && text.contains("largest accepted"), "{text}");
    assert!(seconds < 1.0, "took {seconds} s");
    assert!(peak_kib < 100 * 1024, "peak memory {peak_kib} KiB");
}

/// Issue 10: truncated, corrupt and unsupported images, a closed stdout and an absurd --repeat
/// each end with a message and a documented status, never a panic.
#[test]
fn cli_bad_files_closed_pipe_and_absurd_repeat() {
    let dir = scratch_dir("badfiles");
    let png = std::fs::read(fixture("images/coffee.png")).expect("coffee.png");
    let jpg = std::fs::read(fixture("images/dog.jpg")).expect("dog.jpg");
    let mut corrupt = jpg.clone();
    corrupt[jpg.len() / 3..jpg.len() / 3 + 64].fill(0xff);
    for (name, bytes) in [
        ("truncated.png", png[..png.len() / 2].to_vec()),
        ("truncated.jpg", jpg[..600].to_vec()),
        ("corrupt.jpg", corrupt),
        ("image.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec()),
        ("empty.png", Vec::new()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        let (status, _, stderr) = cli(&["classify", path.to_str().expect("utf8")]);
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        // A corrupt JPEG may still decode (JPEG decoders conceal errors): then it classifies.
        if name == "corrupt.jpg" && status == Some(0) {
            continue;
        }
        assert_eq!(status, Some(1), "{name}: {stderr}");
        assert!(stderr.starts_with(&format!("sightline: error: cannot use {}", path.display())), "{name}: {stderr}");
    }
    // stdout closed after one byte (`| head -c1`): a quiet exit, status 0, no panic.
    let coffee = fixture("images/coffee.png");
    let (status, stderr) =
        cli_with_stdout_closed(&["classify", "--json", "--repeat", "3", coffee.to_str().expect("utf8")]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status, Some(0), "{stderr}");
    // An absurd --repeat is a usage error (status 2), not an allocation failure.
    let (status, _, stderr) = cli(&["classify", "--repeat", "18446744073709551615", "x.png"]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("--repeat"), "{stderr}");
}

/// Issue 13: batch mode. Folders are searched recursively (PNG/JPEG only, in name order), files
/// named on the command line are used as given, each image gives one --jsonl line equal to its
/// single-image --json object plus "path", unreadable files get an "error" line without
/// stopping the run, and the exit status says that something failed.
#[test]
fn cli_batch_mode_lists_folders_keeps_order_and_goes_on_past_bad_files() {
    let dir = scratch_dir("batch");
    let nested = dir.join("b-nested");
    std::fs::create_dir_all(&nested).expect("mkdir");
    let copy = |from: &str, to: &Path| std::fs::copy(fixture(&format!("images/{from}")), to).expect("copy");
    copy("coffee.png", &dir.join("a-coffee.png"));
    copy("dog.jpg", &nested.join("dog.JPG"));
    copy("chelsea.png", &dir.join("c-chelsea.png"));
    let png = std::fs::read(fixture("images/coffee.png")).expect("coffee.png");
    std::fs::write(dir.join("b-broken.png"), &png[..png.len() / 2]).expect("write");
    std::fs::write(dir.join("notes.txt"), "not an image, not listed").expect("write");
    let missing = dir.join("missing.png");
    let expected_paths = [
        dir.join("a-coffee.png"),
        dir.join("b-broken.png"),
        nested.join("dog.JPG"),
        dir.join("c-chelsea.png"),
        missing.clone(),
    ];
    let single_json = |cmd: &str, path: &Path| -> Value {
        let (status, stdout, stderr) = cli(&[cmd, "--json", path.to_str().expect("utf8")]);
        assert_eq!(status, Some(0), "{stderr}");
        serde_json::from_str(&stdout).expect("valid JSON")
    };
    for cmd in ["classify", "detect"] {
        let (status, stdout, stderr) =
            cli(&[cmd, "--jsonl", dir.to_str().expect("utf8"), missing.to_str().expect("utf8")]);
        assert_eq!(status, Some(1), "a failed image makes the run fail at the end: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains("5 images in") && stderr.contains("2 of 5 images could not be used"), "{stderr}");
        let lines: Vec<Value> =
            stdout.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
        let paths: Vec<&str> = lines.iter().map(|l| l["path"].as_str().expect("path")).collect();
        let expected: Vec<String> = expected_paths.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(paths, expected, "input order, folders in name order");
        for (line, path) in lines.iter().zip(&expected_paths) {
            let fields = line.as_object().expect("an object");
            assert_eq!(fields.keys().next().map(String::as_str), Some("path"), "path comes first");
            if path.ends_with("b-broken.png") || path == &missing {
                let error = line["error"].as_str().expect("an error line");
                assert!(error.contains(&path.display().to_string()), "{error}");
                assert_eq!(fields.len(), 2, "{line}");
            } else {
                let mut without_path = fields.clone();
                without_path.shift_remove("path");
                assert_eq!(Value::Object(without_path), single_json(cmd, path), "{cmd} {}", path.display());
            }
        }
    }
    // Human-readable output for several files: one block per image, status 0 when all worked.
    let (a, c) = (dir.join("a-coffee.png"), dir.join("c-chelsea.png"));
    let (status, stdout, stderr) =
        cli(&["classify", "--top-k", "1", a.to_str().expect("utf8"), c.to_str().expect("utf8")]);
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    assert!(stdout.starts_with(&format!("{} (", a.display())) && stdout.contains("espresso"), "{stdout}");
    assert!(stderr.contains("2 images in") && stderr.contains("0 failed"), "{stderr}");
    // The single-image flags are usage errors (status 2) in a batch.
    let d = dir.to_str().expect("utf8");
    for args in [
        &["classify", "--json", d][..],
        &["classify", "--repeat", "2", d],
        &["classify", "--explain-png", "/tmp/x.png", d],
        &["detect", "--draw", "/tmp/x.png", d],
    ] {
        let (status, _, stderr) = cli(args);
        assert_eq!(status, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("takes a single image"), "{args:?}: {stderr}");
    }
    // A folder without images is a runtime error, not an empty success.
    let empty = scratch_dir("batch-empty");
    std::fs::write(empty.join("readme.txt"), "no images here").expect("write");
    let (status, stdout, stderr) = cli(&["detect", "--jsonl", empty.to_str().expect("utf8")]);
    assert_eq!((status, stdout.as_str()), (Some(1), ""), "{stderr}");
    assert!(stderr.contains("no images"), "{stderr}");
    // A closed stdout stops a batch quietly.
    let (status, stderr) = cli_with_stdout_closed(&["classify", "--jsonl", d]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status, Some(0), "{stderr}");
}

/// Issue 8: an invalid option is reported as an option error, before the weights are read (it
/// used to say "cannot load <weights path>: top_k must be …").
#[test]
fn cli_reports_option_errors_as_option_errors() {
    for args in [
        &["classify", "--top-k", "0", "/nonexistent.png"][..],
        &["classify", "--weights", "/nonexistent.safetensors", "--max-results", "1001", "x.png"],
        &["detect", "--score-threshold", "1.5", "/nonexistent.png"],
    ] {
        let (status, _, stderr) = cli(args);
        assert_eq!(status, Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("sightline: error: invalid options: "), "{args:?}: {stderr}");
        assert!(stderr.contains("must be between"), "{args:?}: {stderr}");
        assert!(!stderr.contains("cannot") && !stderr.contains("safetensors"), "{args:?}: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// Detector (NanoDet-g-416)
// ---------------------------------------------------------------------------------------------

/// Bounds from the reference's tolerance table.
const CLS_TOL: f32 = 1e-4;
const REG_TOL: f32 = 1e-3;
/// Relative bound for intermediates: max |Δ| / max |reference|.
const INTERMEDIATE_REL_TOL: f32 = 1e-4;

fn detector_weights() -> Vec<u8> {
    weights("nanodet-g-416", Precision::F32)
}

fn reference_options() -> DetectorOptions {
    // The reference det.json keeps every candidate above 0.05, at most 100.
    DetectorOptions::default().with_score_threshold(0.05).with_max_results(100)
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec().expect("f32 data")
}

fn input_tensor(name: &str, device: &Device) -> Tensor<4> {
    let (shape, data) = npy_f32(&fixture(&format!("{name}/det_input.npy")));
    assert_eq!(shape, vec![1, 3, 416, 416]);
    Tensor::from_data(TensorData::new(data, [1, 3, 416, 416]), device)
}

#[test]
fn detector_preprocessing_reproduces_reference_inputs() {
    let d = ObjectDetector::from_bytes(&detector_weights(), &cpu_device(), DetectorOptions::default()).expect("load");
    for name in IMAGES {
        let (px, w, h) = npy_rgb(name);
        let got = d.preprocess(&Image::from_rgb(&px, w, h).expect("valid"));
        let (_, expected) = npy_f32(&fixture(&format!("{name}/det_input.npy")));
        let diff = max_abs_diff(&got.data, &expected);
        assert!(diff <= 1e-4, "{name}: detector preprocessing differs by {diff}");
    }
}

fn check_detector(device: &Device, backend: &str) {
    let d = ObjectDetector::from_bytes(&detector_weights(), device, reference_options()).expect("load");
    // Intermediates of `dog`.
    let x = input_tensor("dog", device);
    let c = d.model().backbone(x);
    let p = d.model().neck(c.clone());
    for (label, t) in ["C3", "C4", "C5"].into_iter().zip(c).chain(["P3", "P4", "P5"].into_iter().zip(p)) {
        let (shape, expected) = npy_f32(&fixture(&format!("dog/intermediates/nanodet_{label}.npy")));
        assert_eq!(t.dims().to_vec(), shape, "{label} shape");
        let got = to_vec(t);
        let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let rel = max_abs_diff(&got, &expected) / scale;
        println!("{backend} dog {label}: relative max |Δ| = {rel:.2e}");
        assert!(rel <= INTERMEDIATE_REL_TOL, "{backend} {label}: relative difference {rel}");
    }
    // The six raw outputs of every reference input, per level and packed into the one tensor a
    // frame reads back (written in place by the head's convolutions on the GPU).
    for name in IMAGES {
        let packed = to_vec(d.model().forward_packed(input_tensor(name, device)));
        let mut at = 0;
        for stride in [8, 16, 32] {
            let (shape, cls) = npy_f32(&fixture(&format!("{name}/det_cls{stride}.npy")));
            let (_, reg) = npy_f32(&fixture(&format!("{name}/det_reg{stride}.npy")));
            let (cells, nc, nr) = (shape[1], shape[2], reg.len() / shape[1]);
            let (mut dc, mut dr) = (0.0f32, 0.0f32);
            for cell in 0..cells {
                let row = &packed[at + cell * (nc + nr)..at + (cell + 1) * (nc + nr)];
                dc = dc.max(max_abs_diff(&row[..nc], &cls[cell * nc..(cell + 1) * nc]));
                dr = dr.max(max_abs_diff(&row[nc..], &reg[cell * nr..(cell + 1) * nr]));
            }
            at += cells * (nc + nr);
            println!("{backend} {name} packed {stride}: cls max |Δ| = {dc:.2e}, reg max |Δ| = {dr:.2e}");
            assert!(dc <= CLS_TOL && dr <= REG_TOL, "{backend} {name} packed level {stride}: {dc} / {dr}");
        }
        assert_eq!(at, packed.len(), "{backend} {name}: packed output size");
        let levels = d.model().forward(input_tensor(name, device));
        for (level, stride) in levels.into_iter().zip([8, 16, 32]) {
            for (what, t, tol) in [("cls", level.cls, CLS_TOL), ("reg", level.reg, REG_TOL)] {
                let (shape, expected) = npy_f32(&fixture(&format!("{name}/det_{what}{stride}.npy")));
                assert_eq!(t.dims().to_vec(), shape);
                let diff = max_abs_diff(&to_vec(t), &expected);
                println!("{backend} {name} {what}{stride}: max |Δ| = {diff:.2e}");
                assert!(diff <= tol, "{backend} {name} {what}{stride}: differs by {diff} (bound {tol})");
            }
        }
    }
}

#[test]
fn detector_matches_reference_on_cpu() {
    check_detector(&cpu_device(), "cpu");
}

#[test]
fn detector_matches_reference_on_wgpu() {
    let device = wgpu_device().expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)");
    check_detector(&device, "wgpu");
}

/// Decode + NMS from the reference input tensors must match `det.json` under compare.py strict.
#[test]
fn decoded_detections_from_reference_inputs_pass_compare_py_strict() {
    let device = cpu_device();
    let d = ObjectDetector::from_bytes(&detector_weights(), &device, reference_options()).expect("load");
    let out = scratch_dir("det");
    for name in IMAGES {
        let (_, data) = npy_f32(&fixture(&format!("{name}/det_input.npy")));
        let packed = to_vec(d.forward(data));
        // The mapping back to source pixels comes from preprocessing the source image itself.
        let (px, w, h) = npy_rgb(name);
        let transform = d.preprocess(&Image::from_rgb(&px, w, h).expect("valid")).transform;
        let reference = reference_json(&format!("{name}/det.json"));
        assert_eq!((reference["width"].as_u64(), reference["height"].as_u64()), (Some(w.into()), Some(h.into())));
        let result = d.postprocess(&packed, &transform).expect("decode");
        assert!(result.detections.len() <= 100);
        let path = out.join(format!("{name}.json"));
        std::fs::write(&path, result.to_json().to_string()).expect("write");
        compare_py(&path, &fixture(&format!("{name}/det.json")), false);
    }
}

/// `sightline detect --json` end to end from the image files, under compare.py `--loose`.
#[test]
fn cli_detect_json_passes_compare_py_loose() {
    let out = scratch_dir("cli-det");
    for (name, file) in FIXTURES {
        let image = fixture(&format!("images/{file}"));
        let (status, stdout, stderr) =
            cli(&["detect", "--json", "--score-threshold", "0.05", image.to_str().expect("utf8")]);
        assert_eq!(status, Some(0), "{stderr}");
        assert_eq!(stdout.trim().lines().count(), 1, "exactly one JSON object");
        let parsed: Value = serde_json::from_str(&stdout).expect("valid JSON");
        assert!(parsed["detections"].as_array().is_some_and(|d| !d.is_empty()), "{parsed}");
        let path = out.join(format!("{name}.json"));
        std::fs::write(&path, stdout).expect("write");
        compare_py(&path, &fixture(&format!("{name}/det.json")), true);
    }
    // --draw writes a labelled image of the same size.
    let drawn = out.join("dog-boxes.png");
    let run = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["detect", "--draw"])
        .arg(&drawn)
        .arg(fixture("images/dog.jpg"))
        .output()
        .expect("run the CLI");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("dog") && text.contains("bicycle"), "{text}");
    let img = image::open(&drawn).expect("drawn image").into_rgb8();
    assert_eq!(img.dimensions(), (768, 576));
    let original = image::open(fixture("images/dog.jpg")).expect("dog.jpg").into_rgb8();
    let changed = img.pixels().zip(original.pixels()).filter(|(a, b)| a != b).count();
    assert!(changed > 1000, "boxes were drawn ({changed} pixels changed)");
}

#[test]
fn detector_bad_input_and_options_are_named_errors() {
    let weights = detector_weights();
    let device = cpu_device();
    let e =
        ObjectDetector::from_bytes(&weights, &device, DetectorOptions::default().with_iou_threshold(2.0)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidOptions);
    // The classifier's weights are not the detector's: the header says so, and without a header
    // the first missing tensor is named.
    let e = ObjectDetector::from_bytes(&classifier_weights(), &device, DetectorOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelLoad);
    assert!(e.message().contains("for efficientnet-lite0, not nanodet-g-416"), "{e}");
    let bare = rewrite(&classifier_weights(), |_, header| header.clear());
    let e = ObjectDetector::from_bytes(&bare, &device, DetectorOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelLoad);
    assert!(e.message().contains("backbone.stages.0.weight"), "{e}");
    let e = ObjectDetector::from_bytes(&weights[..weights.len() - 1], &device, DetectorOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelLoad);
    let mut d = ObjectDetector::from_bytes(&weights, &device, DetectorOptions::default()).expect("load");
    assert_eq!(
        d.set_options(DetectorOptions::default().with_max_results(0)).unwrap_err().kind(),
        ErrorKind::InvalidOptions
    );
    assert_eq!(d.options().max_results, 100, "a rejected update changes nothing");
    // Tiny and extreme images still work.
    let px = [10u8, 200, 30, 255];
    d.detect(&Image::from_rgba(&px, 1, 1).expect("valid")).expect("1x1 detects");
    let (px, w, h) = npy_rgb("dog");
    let found = d.detect(&Image::from_rgb(&px, w, h).expect("valid")).expect("detect");
    let labels: Vec<&str> = found.detections.iter().map(|x| x.label.as_str()).collect();
    assert!(labels.contains(&"dog") && labels.contains(&"bicycle"), "{labels:?}");
}

// ---------------------------------------------------------------------------------------------
// Reduced-precision weights (issue 11)
// ---------------------------------------------------------------------------------------------

/// How far a variant's outputs are from f32's, over every reference input.
#[derive(Debug, Default)]
struct Agreement {
    logits_max_abs: f32,
    probabilities_max_abs: f32,
    top1_same: usize,
    top5_same: usize,
    inputs: usize,
    detections_f32: usize,
    detections_recovered: usize,
    detections_new: usize,
}

impl Agreement {
    /// The bounds a default variant must meet: top-1 and the top-5 set identical on every input,
    /// every f32 detection ≥ 0.35 found again (same class, IoU ≥ 0.9, |Δscore| ≤ 0.03), none new.
    fn meets_bounds(&self) -> bool {
        self.top1_same == self.inputs
            && self.top5_same == self.inputs
            && self.detections_recovered == self.detections_f32
            && self.detections_new == 0
    }

    fn to_json(&self) -> Value {
        serde_json::json!({
            "classifier": {
                "inputs": self.inputs,
                "logits_max_abs_diff": self.logits_max_abs,
                "probabilities_max_abs_diff": self.probabilities_max_abs,
                "top1_identical": self.top1_same,
                "top5_set_identical": self.top5_same,
            },
            "detector": {
                "f32_detections_at_0.35": self.detections_f32,
                "recovered": self.detections_recovered,
                "new": self.detections_new,
            },
        })
    }
}

/// The top-`k` class indices of `logits`, best first.
fn top(logits: &[f32], k: usize) -> Vec<usize> {
    sightline::postprocess::top_k(logits, k).into_iter().map(|(i, _)| i).collect()
}

/// Measures `precision` against f32 on `device` over the classifier's 8 and the detector's 4
/// reference inputs.
fn agreement(precision: Precision, device: &Device) -> Agreement {
    let load_c =
        |p| ImageClassifier::from_bytes(&weights("efficientnet-lite0", p), device, ClassifierOptions::default());
    let (base, variant) = (load_c(Precision::F32).expect("f32"), load_c(precision).expect("variant"));
    assert_eq!(variant.precision(), precision);
    let mut a = Agreement::default();
    for name in IMAGES {
        for (mode, _) in MODES {
            let (_, input) = npy_f32(&fixture(&format!("{name}/cls_{mode}_input.npy")));
            let (x, y) = (to_vec(base.forward(input.clone())), to_vec(variant.forward(input)));
            a.logits_max_abs = a.logits_max_abs.max(max_abs_diff(&x, &y));
            a.probabilities_max_abs = a.probabilities_max_abs.max(max_abs_diff(&softmax(&x), &softmax(&y)));
            a.top1_same += usize::from(top(&x, 1) == top(&y, 1));
            let (mut tx, mut ty) = (top(&x, 5), top(&y, 5));
            tx.sort_unstable();
            ty.sort_unstable();
            a.top5_same += usize::from(tx == ty);
            a.inputs += 1;
        }
    }
    let options = DetectorOptions::default().with_score_threshold(0.35);
    let load_d = |p| ObjectDetector::from_bytes(&weights("nanodet-g-416", p), device, options.clone());
    let (base, variant) = (load_d(Precision::F32).expect("f32"), load_d(precision).expect("variant"));
    for name in IMAGES {
        let (_, input) = npy_f32(&fixture(&format!("{name}/det_input.npy")));
        let x = base.decode(&to_vec(base.forward(input.clone())), 0.35).expect("decode");
        let y = variant.decode(&to_vec(variant.forward(input)), 0.35).expect("decode");
        a.detections_f32 += x.len();
        let mut unmatched: Vec<_> = y.clone();
        for d in &x {
            let found = unmatched
                .iter()
                .position(|e| e.class == d.class && iou(&e.bbox, &d.bbox) >= 0.9 && (e.score - d.score).abs() <= 0.03);
            if let Some(i) = found {
                unmatched.remove(i);
                a.detections_recovered += 1;
            }
        }
        a.detections_new += unmatched.len();
    }
    a
}

/// Every variant loads and meets the bounds on the CPU; the default also on wgpu. With
/// `SIGHTLINE_PRECISION_JSON=path` the figures are written there (`scripts/bench/precision.sh`).
#[test]
fn reduced_precision_variants_agree_with_f32() {
    let mut report = serde_json::Map::new();
    for precision in Precision::ALL {
        let a = agreement(precision, &cpu_device());
        println!("cpu {}: {a:?} (meets the bounds: {})", precision.name(), a.meets_bounds());
        if precision == DEFAULT_PRECISION {
            assert!(a.meets_bounds(), "the default {} does not meet the bounds: {a:?}", precision.name());
        }
        report.insert(precision.name().to_owned(), a.to_json());
    }
    let device = wgpu_device().expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)");
    let a = agreement(DEFAULT_PRECISION, &device);
    println!("wgpu {}: {a:?}", DEFAULT_PRECISION.name());
    assert!(a.meets_bounds(), "the default on wgpu: {a:?}");
    report.insert(format!("{}_wgpu", DEFAULT_PRECISION.name()), a.to_json());
    if let Ok(path) = std::env::var("SIGHTLINE_PRECISION_JSON") {
        let json = serde_json::json!({ "default": DEFAULT_PRECISION.name(), "variants": report });
        std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json")).expect("write the report");
    }
}

/// A safetensors file rebuilt from `bytes` after `edit` changed its tensors and header.
fn rewrite(
    bytes: &[u8],
    edit: impl FnOnce(
        &mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>,
        &mut std::collections::HashMap<String, String>,
    ),
) -> Vec<u8> {
    let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes).expect("header");
    let mut header = metadata.metadata().clone().unwrap_or_default();
    let file = safetensors::SafeTensors::deserialize(bytes).expect("file");
    let mut tensors: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.dtype(), view.shape().to_vec(), view.data().to_vec()))
        .collect();
    edit(&mut tensors, &mut header);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            (name.clone(), safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).expect("view"))
        })
        .collect();
    safetensors::serialize(views, Some(header)).expect("serialise")
}

/// Issue 11: odd variant files are `ModelLoad` errors that name what is wrong.
#[test]
fn odd_or_corrupt_variant_files_are_model_load_errors() {
    let int8 = weights("efficientnet-lite0", Precision::Int8);
    let device = cpu_device();
    let load = |bytes: &[u8]| ImageClassifier::from_bytes(bytes, &device, ClassifierOptions::default());
    assert_eq!(load(&int8).expect("the int8 file loads").precision(), Precision::Int8);
    let scale = "_conv_stem.weight_scale";
    let set_scale = |value: f32| {
        rewrite(&int8, |tensors, _| {
            let t = tensors.iter_mut().find(|t| t.0 == scale).expect("scale tensor");
            t.3[..4].copy_from_slice(&value.to_le_bytes());
        })
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("zero scale", set_scale(0.0), scale),
        ("NaN scale", set_scale(f32::NAN), scale),
        ("infinite scale", set_scale(f32::INFINITY), scale),
        (
            "misshapen scale",
            rewrite(&int8, |tensors, _| {
                let t = tensors.iter_mut().find(|t| t.0 == scale).expect("scale tensor");
                t.2 = vec![31];
                t.3.truncate(31 * 4);
            }),
            scale,
        ),
        ("missing scale", rewrite(&int8, |tensors, _| tensors.retain(|t| t.0 != scale)), scale),
        (
            "a file for another model",
            rewrite(&int8, |_, header| {
                header.insert("model".into(), "nanodet-g-416".into());
            }),
            "nanodet-g-416",
        ),
        (
            "an unknown variant",
            rewrite(&int8, |_, header| {
                header.insert("variant".into(), "int4".into());
            }),
            "\"int4\"",
        ),
        (
            "a newer format",
            rewrite(&int8, |_, header| {
                header.insert("format_version".into(), "2".into());
            }),
            "version 2",
        ),
        ("truncated", int8[..int8.len() / 2].to_vec(), "safetensors"),
    ];
    for (what, bytes, names) in cases {
        let e = load(&bytes).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ModelLoad, "{what}: {e}");
        assert!(e.message().contains(names), "{what}: the error names {names}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Teach and explain: embeddings, trained heads, class-activation maps
// ---------------------------------------------------------------------------------------------

/// Relative bound for embeddings and maps: max |Δ| / max |reference|.
const EMBED_REL_TOL: f32 = 1e-4;

fn rel_diff(got: &[f32], expected: &[f32]) -> f32 {
    max_abs_diff(got, expected) / expected.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

fn cpu_classifier() -> ImageClassifier {
    ImageClassifier::from_bytes(&classifier_weights(), &cpu_device(), ClassifierOptions::default()).expect("load")
}

fn reference_input(name: &str) -> Vec<f32> {
    npy_f32(&fixture(&format!("{name}/cls_crop224_input.npy"))).1
}

#[test]
fn embeddings_match_the_independent_pooled_features() {
    // The reference: onnxruntime on the peer ONNX export (tests/tools/pooled_reference.py).
    let wgpu = wgpu_device().expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)");
    for (device, backend) in [(cpu_device(), "cpu"), (wgpu, "wgpu")] {
        let c =
            ImageClassifier::from_bytes(&classifier_weights(), &device, ClassifierOptions::default()).expect("load");
        for name in IMAGES {
            let (shape, expected) = npy_f32(&fixture(&format!("{name}/cls_crop224_pooled.npy")));
            assert_eq!(shape, vec![1, 1280]);
            let got = to_vec(c.embed_tensor(reference_input(name)));
            let rel = rel_diff(&got, &expected);
            println!("{backend} {name}: embedding relative max |Δ| = {rel:.2e}");
            assert!(rel <= EMBED_REL_TOL, "{backend} {name}: embedding differs by {rel} (relative)");
        }
    }
    // From pixels, through the classifier's own preprocessing (a PNG: decoded exactly).
    let (px, w, h) = npy_rgb("chelsea");
    let got = cpu_classifier().embed(&Image::from_rgb(&px, w, h).expect("valid")).expect("embed");
    let expected = npy_f32(&fixture("chelsea/cls_crop224_pooled.npy")).1;
    assert!(rel_diff(&got, &expected) <= EMBED_REL_TOL);
}

/// A crop of a fixture image, `(left, top, right, bottom)` as fractions of its size.
fn crop(name: &str, (l, t, r, b): (f32, f32, f32, f32)) -> (Vec<u8>, u32, u32) {
    let (px, w, h) = npy_rgb(name);
    let (x0, y0) = ((l * w as f32) as u32, (t * h as f32) as u32);
    let (x1, y1) = ((r * w as f32) as u32, (b * h as f32) as u32);
    let mut out = Vec::with_capacity(((x1 - x0) * (y1 - y0) * 3) as usize);
    for y in y0..y1 {
        let row = (y * w * 3) as usize;
        out.extend_from_slice(&px[row + (x0 * 3) as usize..row + (x1 * 3) as usize]);
    }
    (out, x1 - x0, y1 - y0)
}

/// Three fixtures, one label each.
const TEACH: [(&str, &str); 3] = [("chelsea", "cat"), ("coffee", "coffee"), ("dog", "dog")];
/// Training crops: the four corners at 75 %.
const TRAIN_CROPS: [(f32, f32, f32, f32); 4] =
    [(0.0, 0.0, 0.75, 0.75), (0.25, 0.0, 1.0, 0.75), (0.0, 0.25, 0.75, 1.0), (0.25, 0.25, 1.0, 1.0)];
/// Held-apart crops: other windows, never trained on.
const HELD_APART_CROPS: [(f32, f32, f32, f32); 4] =
    [(0.1, 0.1, 0.9, 0.9), (0.0, 0.2, 1.0, 0.8), (0.2, 0.0, 0.8, 1.0), (0.05, 0.3, 0.65, 0.9)];

#[test]
fn a_head_trained_on_crops_classifies_held_apart_crops_and_round_trips() {
    let c = cpu_classifier();
    let mut trainer = sightline::HeadTrainer::new();
    for (name, label) in TEACH {
        for window in TRAIN_CROPS {
            let (px, w, h) = crop(name, window);
            let examples = c.embed_examples(&Image::from_rgb(&px, w, h).expect("valid"), true).expect("embed");
            assert_eq!(examples.len(), 6, "plain, mirrored, two shifted crops and their mirrors");
            for e in examples {
                trainer.add_example(label, e).expect("valid example");
            }
        }
    }
    let start = std::time::Instant::now();
    let (head, report) = trainer.train(&sightline::TrainOptions::default(), |_| {}).expect("train");
    println!("trained on {} examples in {:.0} ms", 3 * 4 * 6, start.elapsed().as_secs_f64() * 1e3);
    assert_eq!(report.train_accuracy, 1.0, "{report:?}");
    let custom = c.with_head(&head);
    let reloaded =
        c.with_head(&sightline::Head::from_bytes(&head.to_bytes().expect("bytes"), &cpu_device()).expect("load"));
    let mut right = 0;
    for (name, label) in TEACH {
        for window in HELD_APART_CROPS {
            let (px, w, h) = crop(name, window);
            let image = Image::from_rgb(&px, w, h).expect("valid");
            let result = custom.classify(&image).expect("classify");
            assert_eq!(result.classes.len(), 3, "every class of the head, no more");
            right += usize::from(result.classes[0].label == label);
            let again = reloaded.classify(&image).expect("classify");
            for (a, b) in result.classes.iter().zip(&again.classes) {
                assert_eq!(a.index, b.index);
                assert!((a.score - b.score).abs() <= 1e-6, "{name}: reloaded head gives {} vs {}", b.score, a.score);
            }
        }
    }
    println!("held-apart accuracy: {right} of {}", 3 * HELD_APART_CROPS.len());
    assert_eq!(right, 3 * HELD_APART_CROPS.len(), "every held-apart crop classified right");
}

/// Grad-CAM the textbook way, with burn's autodiff: the gradient of the class score with
/// respect to the last feature map, averaged per channel, weights the channels.
fn autodiff_grad_cam(c: &ImageClassifier, layer: &burn::nn::Linear, input: Vec<f32>, index: usize) -> Vec<f32> {
    use burn::module::Module;
    let x = Tensor::from_data(TensorData::new(input, [1, 3, 224, 224]), &cpu_device());
    // A leaf on the autodiff device: nothing of the backbone is recorded.
    let map = c.model().feature_map(x).autodiff().require_grad();
    let logits = layer.valid().forward(sightline::model::global_average_pool(map.clone()));
    let score = logits.slice([0..1, index..index + 1]).sum();
    let grads = score.backward();
    let gradient = map.grad(&grads).expect("the feature map's gradient");
    let [_, channels, rows, cols] = gradient.dims();
    let weights = gradient.mean_dim(3).mean_dim(2).reshape([1, channels, 1, 1]);
    let cam = to_vec((map.inner() * weights).sum_dim(1).reshape([rows * cols]));
    let peak = cam.iter().fold(0.0f32, |m, &v| m.max(v));
    cam.iter().map(|&v| if peak > 0.0 { v.max(0.0) / peak } else { 0.0 }).collect()
}

#[test]
fn explanations_equal_autodiff_grad_cam_and_the_independent_feature_map() {
    let c = cpu_classifier();
    let (px, w, h) = npy_rgb("dog");
    let image = Image::from_rgb(&px, w, h).expect("valid");
    let input = c.preprocess(&image).data;
    let top = c.explain(&image, None).expect("explain");
    assert_eq!((top.index, top.label.as_str()), (249, "Alaskan Malamute"), "the reference top-1");
    assert_eq!((top.rows, top.cols, top.grid.len()), (7, 7, 49));
    assert!(top.grid.iter().all(|v| (0.0..=1.0).contains(v)) && top.grid.contains(&1.0));
    for index in [249, 235, 0] {
        let e = c.explain(&image, Some(index)).expect("explain");
        let reference = autodiff_grad_cam(&c, c.model().classifier(), input.clone(), index);
        let diff = max_abs_diff(&e.grid, &reference);
        println!("class {index}: CAM vs autodiff Grad-CAM max |Δ| = {diff:.2e}");
        assert!(diff <= 1e-4, "class {index}: CAM differs from Grad-CAM by {diff}");
    }
    // The same map from the independent feature map (onnxruntime, tests/tools/pooled_reference.py).
    let (shape, map) = npy_f32(&fixture("dog/cls_crop224_map.npy"));
    assert_eq!(shape, vec![1, 1280, 7, 7]);
    let weight = to_vec(c.model().classifier().weight.val()); // [1280, 1000]
    let cam: Vec<f32> =
        (0..49).map(|cell| (0..1280).map(|k| weight[k * 1000 + 249] * map[k * 49 + cell]).sum()).collect();
    let peak = cam.iter().fold(0.0f32, |m, &v| m.max(v));
    let expected: Vec<f32> = cam.iter().map(|&v| v.max(0.0) / peak).collect();
    let diff = max_abs_diff(&top.grid, &expected);
    println!("top class: CAM vs the map from the independent feature map max |Δ| = {diff:.2e}");
    assert!(diff <= 1e-3, "differs from the independent map by {diff}");
    // A custom head: the same equality.
    let labels = sightline::Labels::new(vec!["a".into(), "b".into(), "c".into()]).expect("labels");
    let weights = (0..3 * 1280).map(|i| ((i * 7919) % 201) as f32 / 100.0 - 1.0).collect();
    let head = sightline::Head::new(labels, weights, vec![0.1, -0.2, 0.3], &cpu_device()).expect("head");
    let custom = c.with_head(&head);
    for index in 0..3 {
        let e = custom.explain(&image, Some(index)).expect("explain");
        let reference = autodiff_grad_cam(&c, custom.head().expect("head").linear(), input.clone(), index);
        assert!(max_abs_diff(&e.grid, &reference) <= 1e-4, "custom head, class {index}");
    }
    let e = custom.explain(&image, Some(3)).expect_err("no class 3");
    assert_eq!(e.kind(), ErrorKind::InvalidOptions);
}

#[test]
fn the_heat_map_of_dog_jpg_peaks_inside_the_reference_dog_box() {
    let c = cpu_classifier();
    let (px, w, h) = npy_rgb("dog");
    let e = c.explain(&Image::from_rgb(&px, w, h).expect("valid"), None).expect("explain");
    // The region: the centre crop, in source pixels (576 → 256: scale 2.25, 224 px → 504).
    let r = &e.region;
    assert!((r.width - 504.0).abs() < 1.0 && (r.height - 504.0).abs() < 1.0, "{r:?}");
    assert!((r.x - 132.75).abs() < 2.5 && (r.y - 36.0).abs() < 2.5, "{r:?}");
    let peak = e.grid.iter().position(|&v| v == 1.0).expect("a peak");
    let (row, col) = (peak / e.cols, peak % e.cols);
    let x = r.x + (col as f32 + 0.5) * r.width / e.cols as f32;
    let y = r.y + (row as f32 + 0.5) * r.height / e.rows as f32;
    let reference = reference_json("dog/det.json");
    let dog = reference["detections"].as_array().expect("list").iter().find(|d| d["label"] == "dog").expect("a dog");
    let f = |k: &str| dog[k].as_f64().expect("number") as f32;
    println!("peak cell ({row}, {col}) at ({x:.0}, {y:.0}); dog box {dog}");
    assert!(x >= f("x") && x <= f("x") + f("width") && y >= f("y") && y <= f("y") + f("height"));
    // Sampling the map: 1 at the peak cell's centre, nothing outside the region.
    assert!((e.sample(x, y).expect("inside") - 1.0).abs() < 1e-6);
    assert_eq!(e.sample(r.x - 1.0, y), None);
}

#[test]
fn cli_trains_a_head_then_classifies_and_explains_with_it() {
    let dir = scratch_dir("train");
    let data = dir.join("images");
    for (name, label) in TEACH {
        std::fs::create_dir_all(data.join(label)).expect("mkdir");
        for (i, window) in TRAIN_CROPS.iter().chain(&HELD_APART_CROPS).enumerate() {
            let (px, w, h) = crop(name, *window);
            let img = image::RgbImage::from_raw(w, h, px).expect("size");
            img.save(data.join(label).join(format!("{i}.png"))).expect("write png");
        }
    }
    let head = dir.join("head.safetensors");
    let (head_s, data_s) = (head.to_str().expect("utf8"), data.to_str().expect("utf8"));
    let (status, stdout, stderr) =
        cli(&["train", "--out", head_s, "--epochs", "30", "--augment", "--val-split", "0.5", data_s]);
    println!("{stdout}");
    assert_eq!(status, Some(0), "{stderr}");
    assert!(stdout.contains("3 labels, 12 training images (72 examples"), "{stdout}");
    assert!(stdout.contains("epoch   30  loss "), "{stdout}");
    assert!(stdout.contains("held-apart accuracy 1.000 (12 of 12)"), "{stdout}");
    let png = dir.join("explained.png");
    let dog = data.join("dog").join("4.png");
    let (status, stdout, stderr) = cli(&[
        "classify",
        "--head",
        head_s,
        "--json",
        "--explain",
        "--explain-png",
        png.to_str().expect("utf8"),
        dog.to_str().expect("utf8"),
    ]);
    assert_eq!(status, Some(0), "{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("one JSON object");
    let top = json["top"].as_array().expect("top");
    assert_eq!(top.len(), 3, "the head's three classes: {json}");
    assert_eq!(top[0]["label"], "dog");
    assert!(top[0]["index"].is_u64() && top[0]["probability"].is_f64());
    let e = &json["explanation"];
    assert_eq!(e["label"], "dog");
    let grid = e["grid"].as_array().expect("grid");
    assert_eq!(grid.len(), 7);
    assert!(grid.iter().all(|row| row.as_array().is_some_and(|r| r.len() == 7)));
    for k in ["x", "y", "width", "height"] {
        assert!(e["box"][k].is_f64(), "box.{k}: {e}");
    }
    let drawn = image::open(&png).expect("a picture").to_rgb8();
    let original = image::open(&dog).expect("the input").to_rgb8();
    assert_eq!(drawn.dimensions(), original.dimensions());
    assert_ne!(drawn.as_raw(), original.as_raw(), "the heat map is drawn");
    // Bad heads: named, runtime errors.
    std::fs::write(dir.join("bad.safetensors"), b"not a head").expect("write");
    let (status, _, stderr) =
        cli(&["classify", "--head", dir.join("bad.safetensors").to_str().expect("utf8"), dog.to_str().expect("utf8")]);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("cannot load head") && stderr.contains("not a valid head file"), "{stderr}");
    let weights = root().join("models/efficientnet-lite0.f16.safetensors");
    let (status, _, stderr) =
        cli(&["classify", "--head", weights.to_str().expect("utf8"), dog.to_str().expect("utf8")]);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("not a sightline head file"), "{stderr}");
    // Usage errors: one label folder, a bad split.
    let (status, _, stderr) = cli(&["train", "--out", head_s, "--val-split", "1.5", data_s]);
    assert_eq!(status, Some(2), "{stderr}");
    let one = dir.join("one");
    std::fs::create_dir_all(one.join("only")).expect("mkdir");
    std::fs::copy(&dog, one.join("only/a.png")).expect("copy");
    let (status, _, stderr) = cli(&["train", "--out", head_s, one.to_str().expect("utf8")]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("at least two label folders"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
