"""Content: uploads into the IPFS store and the /ipfs/ route."""
