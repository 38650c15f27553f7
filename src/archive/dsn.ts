// The archive's default DSN, apart from src/archive/open.ts: `kttl run` names it in --help without
// loading the stores (pg, node:sqlite), which it loads only when --archive is on (src/controller/app.ts).
export const DEFAULT_ARCHIVE_DSN = '/var/lib/kttl/archive.db';
