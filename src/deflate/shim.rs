//! Temporary: the two-halves codec API over the old `Deflate`, until the
//! codec rework lands.

use alloc::vec::Vec;

use super::{Deflate, DeflateConfig, DeflateParams, Inflated};
use crate::role::Role;

#[derive(Debug)]
pub(crate) struct Compressor(Deflate);

impl Compressor {
    pub(crate) fn new(params: DeflateParams, role: Role, config: &DeflateConfig) -> Self {
        Self(Deflate::new(params, role, config))
    }
    pub(crate) fn params(&self) -> &DeflateParams {
        self.0.params()
    }
    pub(crate) fn wants(&self, len: usize) -> bool {
        self.0.wants(len)
    }
    pub(crate) fn window_bits(&self) -> u8 {
        self.0.send_side().0
    }
    pub(crate) fn compress_into(&mut self, data: &[u8], fin: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.compress(data, fin));
    }
    pub(crate) fn reset(&mut self) {
        self.0.compressor = None;
    }
    pub(crate) fn release(&mut self) {
        self.0.release_scratch();
    }
}

#[derive(Debug)]
pub(crate) struct Decompressor(Deflate);

impl Decompressor {
    pub(crate) fn new(params: DeflateParams, role: Role, config: &DeflateConfig) -> Self {
        Self(Deflate::new(params, role, config))
    }
    pub(crate) fn inflate(&mut self, input: &[u8], output: &mut [u8]) -> Result<Inflated, ()> {
        self.0.inflate(input, output)
    }
    pub(crate) fn at_block_boundary(&self) -> bool {
        self.0.at_block_boundary()
    }
    pub(crate) fn end_message(&mut self, stream_ended: bool) {
        self.0.end_received_message(stream_ended)
    }
    pub(crate) fn release(&mut self) {}
}

pub(crate) fn compress_message(data: &[u8], level: u8, bits: u8, out: &mut Vec<u8>) {
    let config = DeflateConfig { level, threshold: 0, server_max_window_bits: Some(bits), ..DeflateConfig::default() };
    let params =
        DeflateParams { server_max_window_bits: bits, server_no_context_takeover: true, ..DeflateParams::default() };
    let mut d = Deflate::new(params, Role::Server, &config);
    out.extend_from_slice(d.compress(data, true));
}
