//! The network's OpenAI endpoint: nodes hold one outbound link each
//! (`frames` is its wire format) and the gateway forwards clients' requests
//! over it to a suitable node's worker.

pub mod frames;
