//! Integration tests: nri-wasm against the runtime simulator and against
//! raw peers, over real unix sockets.

mod attacks;
mod bad_frames;
mod cache;
mod capture;
mod cli;
mod daemon;
mod events;
mod examples;
mod first_plugin;
mod grants;
mod guests;
mod harness;
mod languages;
mod loading;
mod reads;
mod reconnect;
mod registry;
mod reload;
mod replay;
mod runc;
mod sandbox;
mod shadow;
mod status;
mod traces;
mod transport;
