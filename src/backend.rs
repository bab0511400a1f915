//! Compute backends: burn's `flex` CPU backend everywhere, wgpu natively (Vulkan/Metal/DX12)
//! and WebGPU in the browser. The GPU runtime can be initialised once per process (per page in
//! the browser), so the device is created once and shared by every model.

use burn::tensor::Device;

#[cfg(not(target_family = "wasm"))]
use crate::error::{Error, Result};

/// Which backend runs a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// burn `flex` on the CPU (SIMD; multithreaded natively).
    Cpu,
    /// burn-wgpu on the GPU: WebGPU in the browser, Vulkan/Metal/DX12 natively.
    Gpu,
}

impl BackendKind {
    /// The name shown to users: `cpu`, `webgpu` (browser) or `wgpu` (native).
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Gpu if cfg!(target_family = "wasm") => "webgpu",
            BackendKind::Gpu => "wgpu",
        }
    }
}

/// The CPU device.
pub fn cpu_device() -> Device {
    Device::flex()
}

/// The native wgpu device, initialised on first use. Fails with `BackendUnavailable` when no
/// adapter is found (e.g. no Vulkan driver); the failure is remembered.
#[cfg(not(target_family = "wasm"))]
pub fn wgpu_device() -> Result<Device> {
    use std::sync::OnceLock;
    static DEVICE: OnceLock<Result<Device>> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            // wgpu may panic rather than return an error when no adapter exists.
            match std::panic::catch_unwind(|| Device::wgpu_options().init()) {
                Ok(Ok(device)) => Ok(device),
                Ok(Err(e)) => Err(Error::backend_unavailable(format!("no wgpu device: {e}"))),
                Err(_) => Err(Error::backend_unavailable(
                    "no wgpu device: initialising the GPU runtime panicked (is a Vulkan driver installed?)",
                )),
            }
        })
        .clone()
}
