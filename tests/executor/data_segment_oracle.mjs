// Drives @web3-storage/data-segment for tests/executor/test_aggregate.py. argv[2] is a JSON
// file: {"build": [{"size": n, "pieces": [{"link": "baga…", "size": n}]}],
//        "verify": [{"piece": {"link", "size"}, "proof": {"tree": {"offset", "path": [hex]},
//                     "index": {...}}}]}
// Prints {"built": [{"link", "size", "proofs": [...]}], "verified": ["baga…" | "error: …"]}.
import { Aggregate, Piece, Inclusion } from '@web3-storage/data-segment'
import { CID } from 'multiformats/cid'
import { readFileSync } from 'node:fs'

const hex = (bytes) => Buffer.from(bytes).toString('hex')
const unhex = (text) => new Uint8Array(Buffer.from(text, 'hex'))
const piece = ({ link, size }) => Piece.fromInfo({ link: CID.parse(link), size: BigInt(size) })
const path = ([offset, nodes]) => ({ offset: Number(offset), path: nodes.map(hex) })
const fromJson = (p) => [
  [BigInt(p.tree.offset), p.tree.path.map(unhex)],
  [BigInt(p.index.offset), p.index.path.map(unhex)],
]

const request = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const built = (request.build || []).map(({ size, pieces }) => {
  const parts = pieces.map(piece)
  const aggregate = Aggregate.build({ pieces: parts, size: Aggregate.Size.from(BigInt(size)) })
  const proofs = parts.map((part) => {
    const { ok, error } = aggregate.resolveProof(part.link)
    if (error) throw error
    return { tree: path(ok[0]), index: path(ok[1]) }
  })
  return { link: aggregate.toInfo().link.toString(), size: Number(aggregate.size), proofs }
})
const verified = (request.verify || []).map(({ piece: info, proof }) => {
  const { ok, error } = Inclusion.resolveAggregate(fromJson(proof), piece(info).link)
  if (error) return `error: ${error.message}`
  return Piece.fromLink(ok).toInfo().link.toString() + ' ' + Piece.fromLink(ok).toInfo().size
})
console.log(JSON.stringify({ built, verified }))
