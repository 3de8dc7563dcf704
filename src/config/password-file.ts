// Secrets kept out of the main config file: bgp.peers[].password_file holds a TCP-MD5 password.
// The file is checked the way ssh checks a private key: it must exist, be a regular file, and not
// be readable by other users; the secret never appears in a message.
import { readFileSync, statSync } from 'node:fs';

/** Linux TCP_MD5SIG_MAXKEYLEN: the longest TCP-MD5 key the kernel takes. */
export const MD5_MAX_KEY_BYTES = 80;

/**
 * Reads a TCP-MD5 password from `file`: the whole file, without one trailing newline. Throws a
 * message fit for the operator when the file is missing, unreadable, readable by other users,
 * empty, or longer than 80 bytes. Never puts the secret in the message.
 */
export function readPasswordFile(file: string): Buffer {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    throw new Error(
      `cannot read ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      { cause: e },
    );
  }
  if (!st.isFile()) throw new Error(`${file} is not a regular file`);
  if ((st.mode & 0o007) !== 0) {
    throw new Error(
      `${file} is readable by other users (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); a BGP password file must not be world-readable: chmod 600 ${file}`,
    );
  }
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  let end = data.length;
  if (end > 0 && data[end - 1] === 0x0a) end--;
  if (end > 0 && data[end - 1] === 0x0d) end--;
  const key = data.subarray(0, end);
  if (key.length === 0) throw new Error(`${file} is empty; it must hold the TCP-MD5 password`);
  if (key.length > MD5_MAX_KEY_BYTES)
    throw new Error(`${file} holds ${key.length} bytes; a TCP-MD5 password has at most ${MD5_MAX_KEY_BYTES}`);
  return key;
}
