//! keyward's server: the HTTP API, its state, and start-up; `main.rs` is the CLI around it.

pub mod cache;
pub mod config;
pub mod error;
pub mod extract;
pub mod issue;
pub mod keys;
pub mod limits;
pub mod recorder;
pub mod routes;
pub mod serve;
pub mod state;
pub mod tokens;
pub mod views;

pub use config::Config;
pub use serve::{start, Running};
