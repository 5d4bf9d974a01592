// Independent clients of the dashboard's /ipfs/ route as a trustless gateway, run by
// test_trustless_gateway.py through tests/executor/node_oracles.py (on Node 22):
//
//   fetch GATEWAY KEY PATH...  @helia/verified-fetch with GATEWAY as its only source: the
//       bytes of each ipfs://PATH (a file), every block checked against its CID. Prints
//       {"files": {PATH: {"sha256", "size"}}, "requests": N}.
//   dag GATEWAY KEY CID        @helia/verified-fetch: the CAR it builds, from verified blocks,
//       of the whole DAG under CID. Prints {"blocks": [CID...], "requests": N}.
//   car GATEWAY KEY URL        one CAR answer read with @ipld/car, each block's hash checked
//       with multiformats (an unknown hash function or a mismatch fails). Prints
//       {"contentType", "roots": [CID...], "blocks": [CID...]}.
//
// The gateway wants an API key: it is added to every request to GATEWAY, and to no other.
import { createHash } from 'node:crypto'
import { withHTTP } from '@helia/http'
import { createVerifiedFetch } from '@helia/verified-fetch'
import { CarBlockIterator } from '@ipld/car'
import { equals } from 'multiformats/bytes'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { createHeliaLight } from 'helia'

const [mode, gateway, key, ...rest] = process.argv.slice(2)
let requests = 0
const plainFetch = globalThis.fetch
globalThis.fetch = (input, init = {}) => {
  const url = typeof input === 'string' ? input : (input.url ?? String(input))
  if (url.startsWith(gateway)) {
    requests += 1
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : {}))
    headers.set('Authorization', `Bearer ${key}`)
    init = { ...init, headers }
  }
  return plainFetch(input, init)
}

// HTTP only, GATEWAY the one source. createVerifiedFetch({gateways}) would also start a libp2p
// node, whose routing is asked first and, with no peers, holds every request for a minute;
// and Helia asks its fallback routers (GATEWAY here) only once some other router has
// answered, so one that never finds anything stands first.
async function verifiedFetch () {
  const helia = withHTTP(createHeliaLight(), {
    delegatedRouters: [],
    recursiveGateways: [gateway],
    allowLocal: true,
    allowInsecure: true
  })
  helia.addRouter({ name: 'nothing', async * findProviders () {} })
  await helia.start()
  return createVerifiedFetch(helia)
}

async function files (paths) {
  const vf = await verifiedFetch()
  const out = {}
  try {
    for (const path of paths) {
      const response = await vf(`ipfs://${path}`, { signal: AbortSignal.timeout(60000) })
      if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`)
      const bytes = new Uint8Array(await response.arrayBuffer())
      out[path] = { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length }
    }
  } finally {
    await vf.stop()
  }
  return { files: out, requests }
}

async function dag (cid) {
  const vf = await verifiedFetch()
  try {
    const response = await vf(`ipfs://${cid}`, {
      headers: { Accept: 'application/vnd.ipld.car' },
      signal: AbortSignal.timeout(60000)
    })
    if (!response.ok) throw new Error(`${cid}: HTTP ${response.status} ${await response.text()}`)
    const blocks = []
    for await (const { cid: block } of await CarBlockIterator.fromIterable(response.body)) {
      blocks.push(block.toString())
    }
    return { blocks, requests }
  } finally {
    await vf.stop()
  }
}

const HASHERS = { [sha256.code]: sha256, [identity.code]: identity }

async function car (url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(60000) })
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${await response.text()}`)
  const reader = await CarBlockIterator.fromIterable(response.body)
  const blocks = []
  for await (const { cid, bytes } of reader) {
    const hasher = HASHERS[cid.multihash.code]
    if (hasher == null) throw new Error(`${cid}: unknown hash function ${cid.multihash.code}`)
    const digest = await hasher.digest(bytes)
    if (!equals(digest.bytes, cid.multihash.bytes)) throw new Error(`${cid}: the block does not match its hash`)
    blocks.push(cid.toString())
  }
  const roots = (await reader.getRoots()).map(String)
  return { contentType: response.headers.get('content-type'), roots, blocks }
}

const modes = { fetch: () => files(rest), dag: () => dag(rest[0]), car: () => car(rest[0]) }
console.log(JSON.stringify(await modes[mode]()))
