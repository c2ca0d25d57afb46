//! x402 wire protocol, merchant layer and buyer client (issue 4).
