//! placeholder
pub mod uscc;
