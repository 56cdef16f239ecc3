//! labmate through its real binary, as a user's sessions: one test binary
//! (one link), a module per area.

#![deny(unsafe_code)]

mod common;

mod babysit;
mod browser;
mod concurrency;
mod conformance;
mod demo;
mod fixed_clock;
mod import;
mod index_cache;
mod mcp;
mod messages;
mod notebook;
mod parsers;
mod plot;
mod python_client;
mod read;
mod refs;
mod registry;
mod review;
mod run;
mod serve;
mod slurm;
mod standin;
mod sweep;
mod sync;
mod tensorboard;
mod terminal;
mod wandb;
