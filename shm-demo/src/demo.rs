//! placeholder
use std::process::ExitCode;
use common::Result;
use crate::cli::DemoArgs;
pub fn run(_args: &DemoArgs) -> Result<ExitCode> { Ok(ExitCode::SUCCESS) }
