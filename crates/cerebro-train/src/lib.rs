//! Everything that builds the shipped model and is not shipped with it: [`dataset`] collects
//! and scans the training packages, [`train`] trains, evaluates and writes the model file.

pub mod dataset;
pub mod train;
