"""The notary: pieces, the notary's question, awards, and the deals on chain."""
