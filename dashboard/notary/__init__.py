"""The notary: pieces, verifications, awards, and the deals on chain."""
