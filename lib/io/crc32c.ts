// CRC-32C (Castagnoli), the checksum TFRecord framing uses (lib/io/tensorboard-event-file.ts). Written here:
// Node's zlib.crc32 is the IEEE polynomial, and the maintained npm package for this one (@aws-crypto/crc32c)
// brings @aws-sdk/types and tslib along for what is a 256-entry table and a loop.

// The reflected Castagnoli polynomial.
const POLY = 0x82f63b78;

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The CRC-32C of `bytes`, as an unsigned 32-bit integer. */
export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * The CRC-32C as TFRecord stores it: rotated and offset, so a CRC computed over bytes that themselves hold a
 * CRC does not come out trivially.
 */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(bytes);
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}
