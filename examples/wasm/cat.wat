;; cat for WASI (wasm32, wasi_snapshot_preview1), written by hand so that a module can be run
;; without a WASM toolchain: `python -m executor wasm run examples/wasm/cat.wat ...` compiles it.
;;
;; Writes the files named in argv[1..] to stdout, in order; with no arguments, copies stdin.
;; A path is opened through the preopened directory whose name is its longest prefix (inputs
;; are preopens: `-v CID:/inputs/a.txt` preopens /inputs). A file that cannot be opened or
;; read gets one line on stderr, "cat: cannot open <path>" or "cat: cannot read <path>", and
;; the exit code becomes 1; the other files are still written.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  ;; Memory map: 0 iovec for reads | 8 bytes read | 16 iovec for writes | 24 bytes written
  ;; | 32 prestat | 40 opened fd | 44 argc | 48 argv size | 64 messages | 4096 argv pointers
  ;; | 8192 argv strings (up to 40 KiB) | 49152 a preopen's name (up to 16 KiB)
  ;; | 65536 the copy buffer (64 KiB)
  (memory (export "memory") 2)
  (data (i32.const 64) "cat: cannot open ")    ;; 17 bytes
  (data (i32.const 96) "cat: cannot read ")    ;; 17 bytes
  (data (i32.const 128) "\n")
  (data (i32.const 136) "cat: arguments too long\n")  ;; 24 bytes

  ;; Write len bytes at ptr to fd, all of them (fd_write may write fewer). 0 or an errno.
  (func $write_all (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (local $err i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store (i32.const 16) (local.get $ptr))
        (i32.store (i32.const 20) (local.get $len))
        (local.set $err (call $fd_write (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 24)))
        (if (local.get $err) (then (return (local.get $err))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.load (i32.const 24))))
        (local.set $len (i32.sub (local.get $len) (i32.load (i32.const 24))))
        (br $more)))
    (i32.const 0))

  ;; Copy fd to stdout until end of file. 0, or 1 when a read or a write failed.
  (func $copy (param $fd i32) (result i32)
    (loop $more
      (i32.store (i32.const 0) (i32.const 65536))
      (i32.store (i32.const 4) (i32.const 65536))
      (if (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))
        (then (return (i32.const 1))))
      (if (i32.eqz (i32.load (i32.const 8))) (then (return (i32.const 0))))
      (if (call $write_all (i32.const 1) (i32.const 65536) (i32.load (i32.const 8)))
        (then (return (i32.const 1))))
      (br $more))
    (i32.const 0))

  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $end
      (loop $more
        (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $more)))
    (local.get $n))

  ;; Are the n bytes at a and b equal?
  (func $same (param $a i32) (param $b i32) (param $n i32) (result i32)
    (local $i i32)
    (block $end
      (loop $more
        (br_if $end (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $more)))
    (i32.const 1))

  ;; Open the path of len bytes at p for reading through the preopen whose name is its
  ;; longest prefix. The new fd, or -1.
  (func $open (param $p i32) (param $len i32) (result i32)
    (local $fd i32) (local $name_len i32) (local $best_fd i32) (local $best_len i32)
    (local $rel i32) (local $rel_len i32)
    (local.set $best_fd (i32.const -1))
    (local.set $fd (i32.const 3))
    (block $no_more
      (loop $next
        ;; preopens are numbered from 3 without gaps: the first EBADF ends them
        (br_if $no_more (call $fd_prestat_get (local.get $fd) (i32.const 32)))
        (local.set $name_len (i32.load (i32.const 36)))
        (if (i32.and
              (i32.and (i32.eqz (i32.load8_u (i32.const 32)))  ;; a directory
                       (i32.le_u (local.get $name_len) (i32.const 16384)))
              (i32.gt_u (local.get $name_len) (local.get $best_len)))
          (then
            (if (i32.eqz (call $fd_prestat_dir_name (local.get $fd) (i32.const 49152) (local.get $name_len)))
              (then
                ;; a name ending in '/' (such as "/") counts without it
                (if (i32.eq (i32.load8_u (i32.add (i32.const 49151) (local.get $name_len))) (i32.const 47))
                  (then (local.set $name_len (i32.sub (local.get $name_len) (i32.const 1)))))
                ;; a prefix followed by '/' in the path
                (if (i32.and
                      (i32.lt_u (local.get $name_len) (local.get $len))
                      (call $same (local.get $p) (i32.const 49152) (local.get $name_len)))
                  (then
                    (if (i32.eq (i32.load8_u (i32.add (local.get $p) (local.get $name_len))) (i32.const 47))
                      (then
                        (local.set $best_fd (local.get $fd))
                        (local.set $best_len (local.get $name_len))))))))))
        (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
        (br $next)))
    (if (i32.lt_s (local.get $best_fd) (i32.const 0)) (then (return (i32.const -1))))
    ;; the rest of the path, without the '/' that follows the preopen's name
    (local.set $rel (i32.add (local.get $p) (i32.add (local.get $best_len) (i32.const 1))))
    (local.set $rel_len (i32.sub (local.get $len) (i32.add (local.get $best_len) (i32.const 1))))
    (if (i32.eqz (local.get $rel_len)) (then (return (i32.const -1))))
    ;; lookup flags: follow symlinks; rights: fd_read (bit 1) only
    (if (call $path_open (local.get $best_fd) (i32.const 1) (local.get $rel) (local.get $rel_len)
                         (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 40))
      (then (return (i32.const -1))))
    (i32.load (i32.const 40)))

  ;; "cat: cannot <what> <path>\n" on stderr, where what is the message at msg (17 bytes)
  (func $complain (param $msg i32) (param $p i32) (param $len i32)
    (drop (call $write_all (i32.const 2) (local.get $msg) (i32.const 17)))
    (drop (call $write_all (i32.const 2) (local.get $p) (local.get $len)))
    (drop (call $write_all (i32.const 2) (i32.const 128) (i32.const 1))))

  (func (export "_start")
    (local $argc i32) (local $i i32) (local $p i32) (local $len i32) (local $fd i32)
    (local $status i32)
    (drop (call $args_sizes_get (i32.const 44) (i32.const 48)))
    (local.set $argc (i32.load (i32.const 44)))
    (if (i32.or (i32.gt_u (local.get $argc) (i32.const 1024))
                (i32.gt_u (i32.load (i32.const 48)) (i32.const 40960)))
      (then
        (drop (call $write_all (i32.const 2) (i32.const 136) (i32.const 24)))
        (call $proc_exit (i32.const 2))))
    (drop (call $args_get (i32.const 4096) (i32.const 8192)))
    (if (i32.le_u (local.get $argc) (i32.const 1))
      (then (call $proc_exit (call $copy (i32.const 0)))))
    (local.set $i (i32.const 1))
    (loop $next
      (local.set $p (i32.load (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $len (call $strlen (local.get $p)))
      (local.set $fd (call $open (local.get $p) (local.get $len)))
      (if (i32.lt_s (local.get $fd) (i32.const 0))
        (then
          (call $complain (i32.const 64) (local.get $p) (local.get $len))
          (local.set $status (i32.const 1)))
        (else
          (if (call $copy (local.get $fd))
            (then
              (call $complain (i32.const 96) (local.get $p) (local.get $len))
              (local.set $status (i32.const 1))))
          (drop (call $fd_close (local.get $fd)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $argc))))
    (call $proc_exit (local.get $status))))
