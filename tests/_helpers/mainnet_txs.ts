/**
 * Real signed mainnet transactions, taken from the block fixture
 * (tests/fixtures/blocks/, Bitcoin Core `getblock` verbosity 3 of block 739990).
 */
interface BlockTx {
  txid: string;
  hex: string;
  vin: Array<{ coinbase?: string }>;
}

const block = JSON.parse(
  await Deno.readTextFile(
    new URL("../fixtures/blocks/block_739990.getblock3.json", import.meta.url),
  ),
) as { tx: BlockTx[] };

/** The first `n` non-coinbase transactions of block 739990: `{ txid, hex }`. */
export function mainnetTxs(n: number): { txid: string; hex: string }[] {
  return block.tx.filter((t) => t.vin[0]?.coinbase === undefined).slice(0, n).map((t) => ({
    txid: t.txid,
    hex: t.hex,
  }));
}
