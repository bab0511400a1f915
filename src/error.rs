//! The one error type of the crate.

use std::fmt;

/// What went wrong, as a stable category that callers (and the JS binding) can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The pixel buffer is empty, has the wrong length, or is too large.
    InvalidImage,
    /// An option is out of range or not understood.
    InvalidOptions,
    /// The weights are missing, corrupt, truncated, or do not fit the architecture.
    ModelLoad,
    /// The requested compute backend (e.g. WebGPU) is not available here.
    BackendUnavailable,
    /// The backend failed while running the network or reading its result back.
    Inference,
}

impl ErrorKind {
    /// The error's name as seen from JavaScript (`error.name`).
    pub fn js_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidImage => "InvalidImageError",
            ErrorKind::InvalidOptions => "InvalidOptionsError",
            ErrorKind::ModelLoad => "ModelLoadError",
            ErrorKind::BackendUnavailable => "BackendUnavailableError",
            ErrorKind::Inference => "InferenceError",
        }
    }
}

/// An error from sightline: a [`ErrorKind`] plus a lowercase message that names the bad value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// Builds an error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// The category of the error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message, without the category.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn invalid_image(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidImage, message)
    }

    pub(crate) fn invalid_options(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidOptions, message)
    }

    pub(crate) fn model_load(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ModelLoad, message)
    }

    pub(crate) fn backend_unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BackendUnavailable, message)
    }

    pub(crate) fn inference(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Inference, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_names_are_stable() {
        assert_eq!(ErrorKind::InvalidImage.js_name(), "InvalidImageError");
        assert_eq!(ErrorKind::BackendUnavailable.js_name(), "BackendUnavailableError");
        let e = Error::invalid_options("top_k must be at least 1, got 0");
        assert_eq!(e.to_string(), "top_k must be at least 1, got 0");
        assert_eq!(e.kind(), ErrorKind::InvalidOptions);
    }
}
