//! The bounds every document is read within, whatever it describes: file
//! size, nesting depth and alias expansion. They are checked while the text
//! is read, before anything is built or recursed into. `spec::limits` lists
//! them again beside the node spec's own bounds.

/// Largest spec or job file read, in bytes (1 MiB); a real one is a few KB.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Deepest nesting of sequences and mappings, aliases expanded. node.yaml
/// needs about 8 levels; the bound keeps every later recursion (serde,
/// validation, drop) far inside any thread's stack.
pub const MAX_DEPTH: usize = 64;

/// Nodes (keys and values alike) that expanding aliases may add to a document.
pub const MAX_ALIAS_NODES: u64 = 100_000;

/// Bytes of keys and scalars that expanding aliases may add to a document.
pub const MAX_ALIAS_BYTES: u64 = 4 << 20;
