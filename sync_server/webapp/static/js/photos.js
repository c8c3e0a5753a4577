// Photos from the camera: scaled down on the phone (at most 1600 px on the long side, JPEG
// at quality 0.8: a 12-megapixel shot becomes ~300 KB), hashed with WebCrypto into the id
// the server checks (`sha256:<hex>`), then kept in IndexedDB until uploaded.

const MAX_SIDE = 1600, QUALITY = 0.8;

export async function scaleDown(file) {
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const w = Math.max(1, Math.round(bitmap.width * scale)), h = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  canvas.getContext("2d").drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("toBlob"))), "image/jpeg", QUALITY));
}

export async function blobId(blob) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
  return "sha256:" + Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A camera file as stored: [id, scaled JPEG]. */
export async function takePhoto(file) {
  const blob = await scaleDown(file);
  return [await blobId(blob), blob];
}
