// crc-32 ships types for its main entry only; its CRC32C entry has the same API.
declare module 'crc-32/crc32c.js' {
  const CRC32C: { buf(data: Uint8Array | number[], seed?: number): number };
  export default CRC32C;
}
