/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * CRC-32C (Castagnoli), the checksum of Kafka v2 record batches: reflected
 * polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF.
 *
 * @module
 */

const REFLECTED_POLYNOMIAL = 0x82f63b78;

/** Remainders of every byte value, for one table lookup per input byte. */
const TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let remainder = byte;
    for (let bit = 0; bit < 8; bit++) {
      remainder = remainder & 1 ? (remainder >>> 1) ^ REFLECTED_POLYNOMIAL : remainder >>> 1;
    }
    table[byte] = remainder;
  }
  return table;
})();

/**
 * The CRC-32C of `bytes`, as an unsigned 32-bit number.
 *
 * @example Check value of the algorithm
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
 * ```
 */
export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc = TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}
