//! Ownership labels.
