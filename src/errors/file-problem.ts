const FILE_PROBLEMS = new Map<string, string>([
  ['ENOENT', 'no such file or folder'],
  ['ENOTDIR', 'a part of the path is not a folder'],
  ['EISDIR', 'a folder, not a file'],
  ['EACCES', 'permission denied'],
  ['EPERM', 'not permitted'],
  ['EEXIST', 'already exists'],
  ['ENOSPC', 'no space left on the device'],
  ['EROFS', 'on a read-only file system'],
  ['ENAMETOOLONG', 'the name is too long'],
]);

/**
 * What went wrong with a file, in plain words for the common system errors, else the message.
 *
 * @example `${path}: ${fileProblem(err)}` // "/x.csv: no such file or folder"
 */
export function fileProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return (typeof code === 'string' && FILE_PROBLEMS.get(code)) || (err as Error).message;
}
