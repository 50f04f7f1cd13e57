# Kernel-aware gdb commands for the kernel's memory management, in the
# spirit of Linux's scripts/gdb (lx-*): page-table walks, page descriptors,
# page caches, address spaces, allocator reports, tasks, the kernel log and
# page faults, read from the memory of a stopped machine.
#
# Load after the kernel ELF (the commands need its debug info):
#     gdb target/x86_64-unknown-none/debug/kernel \
#         -ex 'source gdb/mm.py' -ex 'target remote :1234'
# `help mm-pte` etc. describes each command; gdb/README.md lists them.
#
# Data is reached through gdb.Value fields of the Rust types, by the names
# rustc gives them; the accessors below name the field or symbol that is
# missing when the Rust layout changes, rather than print wrong data.
# Enum values (task states, zones, slab states) come from the enums' debug
# info. What debug info does not carry (Rust consts and bitflags values) is
# copied below with the source file it comes from.

import re
import struct

import gdb

# --- Constants that are not in the debug info --------------------------------

MASK64 = (1 << 64) - 1
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
# kernel/src/boot.rs PAGE_OFFSET: the direct map of all RAM (Linux
# page_offset_base); docs/x86_64-memory-map.md.
PAGE_OFFSET = 0xFFFF888000000000
DIRECT_MAP_SIZE = 64 << 40
# Start of the kernel half of the address space.
KERNEL_HALF = 0xFFFF800000000000

# x86_64 paging entries (mm/src/pgtable.rs X86_*).
PTE_PRESENT = 1 << 0
PTE_PS = 1 << 7
PTE_GLOBAL = 1 << 8
PTE_ADDR_MASK = 0x000FFFFFFFFFF000
# (bit, name) in the order mm-pte prints them; bit 7 is PS in a pud or pmd
# and PAT in a pte.
# mm/src/arch/x86_64.rs and mm/src/swapops.rs: a non-present user pte
# holding a swap entry has the type in its top 5 bits and the offset,
# inverted, from bit 14 (Linux's x86_64 __swp_entry); types from
# MAX_SWAPFILES on are migration entries (read, then write) whose offset
# is the pfn in its low SWP_PFN_BITS bits.
PTE_ACCESSED_DIRTY = 1 << 5 | 1 << 6
SWP_TYPE_BITS = 5
SWP_OFFSET_SHIFT = 9 + SWP_TYPE_BITS
MAX_SWAPFILES = (1 << SWP_TYPE_BITS) - 2
SWP_PFN_BITS = 40
# mm/src/swap_state.rs SWP_TYPE_SHIFT: a swap entry as one word, the swap
# cache's key (kernel/src/swap_state.rs).
SWP_KEY_TYPE_SHIFT = 58
PTE_BITS = [(0, "P"), (1, "RW"), (2, "US"), (3, "PWT"), (4, "PCD"), (5, "A"), (6, "D"), (7, "PS"), (8, "G"), (63, "NX")]
# (name, shift of the index) of the four levels.
PT_LEVELS = [("PGD", 39), ("PUD", 30), ("PMD", 21), ("PTE", 12)]

# mm/src/page_flags.rs PageFlags.
PAGE_FLAGS = [
    "LOCKED", "WRITEBACK", "REFERENCED", "UPTODATE", "DIRTY", "LRU", "HEAD", "ACTIVE", "WORKINGSET", "SWAPCACHE",
    "RESERVED", "PRIVATE", "RECLAIM", "SWAPBACKED", "UNEVICTABLE", "MLOCKED", "BUDDY", "SLAB", "TABLE", "TAIL",
    "WAITERS", "READAHEAD", "ERROR",
]
PG_RESERVED = 1 << PAGE_FLAGS.index("RESERVED")
PG_MLOCKED = 1 << PAGE_FLAGS.index("MLOCKED")
PG_BUDDY = 1 << PAGE_FLAGS.index("BUDDY")
PG_SLAB = 1 << PAGE_FLAGS.index("SLAB")
PG_TABLE = 1 << PAGE_FLAGS.index("TABLE")
PG_TAIL = 1 << PAGE_FLAGS.index("TAIL")
PG_UPTODATE = 1 << PAGE_FLAGS.index("UPTODATE")
PG_LRU = 1 << PAGE_FLAGS.index("LRU")
PG_ACTIVE = 1 << PAGE_FLAGS.index("ACTIVE")
PG_SWAPBACKED = 1 << PAGE_FLAGS.index("SWAPBACKED")
PG_UNEVICTABLE = 1 << PAGE_FLAGS.index("UNEVICTABLE")
# The flags that describe a page-cache page's state, in the words mm-page
# and mm-pagecache use.
CACHE_STATE_FLAGS = [(1 << PAGE_FLAGS.index(name), name.lower())
                     for name in ("UPTODATE", "DIRTY", "WRITEBACK", "LOCKED", "READAHEAD", "REFERENCED")]
# mm/src/rmap.rs PAGE_MAPPING_ANON.
PAGE_MAPPING_ANON = 1
# mm/src/xarray.rs: slots per node (1 << XA_CHUNK_SHIFT), the deepest
# tree (shifts 0 to 60), and the page cache's marks by number
# (PAGECACHE_TAG_DIRTY = XA_MARK_0, _WRITEBACK = 1, _TOWRITE = 2).
XA_CHUNK_SHIFT = 6
XA_MAX_LEVELS = 11
XA_MARK_NAMES = ["dirty", "writeback", "towrite"]
XA_MARK_DIRTY = 0
# mm/src/errseq.rs ERRNO_MASK: the last error's errno in a mapping's wb_err.
ERRSEQ_ERRNO_MASK = 0xFFF
# mm/src/page.rs NIL: the "no page" value of a 32-bit list link.
LIST_NIL = 0xFFFFFFFF
# mm/src/mmzone.rs MIGRATE_PCPTYPES: per-cpu list i holds order i / 3.
MIGRATE_PCPTYPES = 3

# mm/src/vma.rs VmaFlags.
VM_READ, VM_WRITE, VM_EXEC, VM_MAYSHARE = 0x1, 0x2, 0x4, 0x80
# mm/src/slub.rs SlabFlags::RECLAIM_ACCOUNT.
SLAB_RECLAIM_ACCOUNT = 1 << 5

# kernel/src/arch/x86_64/traps.rs PageFaultError.
PF_PROT, PF_WRITE, PF_USER, PF_RSVD, PF_INSTR, PF_PK = 1, 2, 4, 8, 16, 32
PAGE_FAULT_VECTOR = 14

# Linux's zone names (mm/src/mmzone.rs ZoneType::name), by variant.
ZONE_NAMES = {"Dma": "DMA", "Dma32": "DMA32", "Normal": "Normal"}
# The letters `ps` shows (kernel/src/sched/mod.rs TaskState::letter).
TASK_STATE_LETTERS = {"Running": "R", "Interruptible": "S", "Uninterruptible": "D", "Dead": "X"}


# --- Memory, symbols and Rust values ----------------------------------------


def require_target():
    """Fails unless gdb is attached to a machine (without one, gdb would
    read the ELF's initial data and every report would be wrong)."""
    if gdb.selected_thread() is None:
        raise gdb.GdbError("mm.py: no running target; connect with `target remote` first")


def read_bytes(addr, size):
    try:
        return gdb.selected_inferior().read_memory(addr, size).tobytes()
    except gdb.MemoryError:
        raise gdb.GdbError(f"mm.py: cannot read {size} bytes at {addr:#x}") from None


def read_u64(addr):
    return struct.unpack("<Q", read_bytes(addr, 8))[0]


def phys_to_virt(phys):
    """The direct-map address of a physical address (Linux __va)."""
    return PAGE_OFFSET + phys


def register(name):
    return int(gdb.parse_and_eval(f"${name}")) & MASK64


def parse_int(expr, what):
    """A number: hex 0x.., decimal, or any gdb expression."""
    try:
        return int(expr, 0) & MASK64
    except ValueError:
        pass
    try:
        return int(gdb.parse_and_eval(expr)) & MASK64
    except (gdb.error, TypeError, ValueError) as e:
        raise gdb.GdbError(f"mm.py: bad {what} {expr!r}: {e}") from None


def kernel_var(name):
    """The value of the kernel static `name` (a path such as
    kernel::mm::PGDAT; private statics are "static" symbols to gdb)."""
    sym = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
    if sym is None:
        raise gdb.GdbError(f"mm.py: no symbol {name} in the kernel's debug info (renamed, or no ELF loaded?)")
    return sym.value()


def kernel_type(name):
    try:
        return gdb.lookup_type(name)
    except gdb.error:
        raise gdb.GdbError(f"mm.py: no type {name} in the kernel's debug info (renamed?)") from None


def enum_names(type_name):
    """{value: variant name} of a fieldless Rust enum."""
    return {f.enumval: f.name.rsplit("::", 1)[-1] for f in kernel_type(type_name).fields()}


def enum_value(type_name, variant):
    for value, name in enum_names(type_name).items():
        if name == variant:
            return value
    raise gdb.GdbError(f"mm.py: enum {type_name} has no variant {variant}")


_checked_fields = set()


def field(v, name):
    """Field `name` of struct `v` (through a pointer too); a clear error
    naming the type if the layout changed."""
    t = v.type.strip_typedefs()
    if t.code == gdb.TYPE_CODE_PTR:
        v = v.dereference()
        t = v.type.strip_typedefs()
    key = (str(t), name)
    if key not in _checked_fields:
        names = [f.name for f in t.fields()] if t.code in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION) else []
        if name not in names:
            raise gdb.GdbError(
                f"mm.py: {t} has no field {name!r} (fields: {', '.join(map(str, names))}); the Rust layout changed"
            )
        _checked_fields.add(key)
    return v[name]


def fields(v, dotted):
    """A chain of fields, "a.b.c"."""
    for name in dotted.split("."):
        v = field(v, name)
    return v


def scalar(v):
    """The integer inside a Rust wrapper: atomics (Atomic<u64> is
    { v: UnsafeCell { value: Align8 { __0: u64 } } }), Cell, UnsafeCell,
    newtypes such as Pfn or bitflags, down to the one non-empty field."""
    while True:
        t = v.type.strip_typedefs()
        if t.code in (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_BOOL, gdb.TYPE_CODE_PTR, gdb.TYPE_CODE_ENUM, gdb.TYPE_CODE_CHAR):
            return int(v) & MASK64 if t.code == gdb.TYPE_CODE_PTR else int(v)
        if t.code == gdb.TYPE_CODE_STRUCT:
            inner = [f for f in t.fields() if not f.artificial and f.type.sizeof > 0]
            if len(inner) == 1:
                v = v[inner[0]]
                continue
        raise gdb.GdbError(f"mm.py: cannot read a {t} as a number; the Rust layout changed")


def array(v):
    t = v.type.strip_typedefs()
    if t.code != gdb.TYPE_CODE_ARRAY:
        raise gdb.GdbError(f"mm.py: expected an array, found {t}")
    lo, hi = t.range()
    return [v[i] for i in range(lo, hi + 1)]


def variant(v):
    """(name, payload) of a Rust enum value: gdb shows the active variant
    as the one field that is not the artificial discriminant."""
    active = [f for f in v.type.fields() if not f.artificial]
    if len(active) != 1:
        raise gdb.GdbError(f"mm.py: cannot tell the variant of {v.type}")
    return active[0].name, v[active[0]]


def option(v):
    """The payload of Some, or None."""
    name, payload = variant(v)
    return field(payload, "__0") if name == "Some" else None


def locked(mutex):
    """The data behind a spin::Mutex (taken or not: the machine is
    stopped)."""
    return fields(mutex, "inner.data.value")


def once(v, what):
    """The value of an initialised spin::Once."""
    complete = enum_value("spin::once::status::Status", "Complete")
    if scalar(field(v, "status")) != complete:
        raise gdb.GdbError(f"mm.py: {what} is not initialised yet (too early in boot?)")
    # UnsafeCell<MaybeUninit<T>>: MaybeUninit { value: ManuallyDrop { value } }.
    return fields(v, "data.value.value.value")


def nonnull(v):
    """The raw pointer inside a NonNull (or a newtype around one)."""
    while field_names(v) != ["pointer"]:
        v = field(v, "__0")
    return field(v, "pointer")


def field_names(v):
    return [f.name for f in v.type.strip_typedefs().fields()]


def fetched(v):
    """`v` read from the target in one go: a lazy value reads each field
    as it is used, one round trip to the machine each, which a loaded
    host's QEMU makes slow; the fields of a fetched value cost nothing."""
    v.fetch_lazy()
    return v


def vec_items(v):
    """The elements of a Vec<T> (its RawVec keeps an untyped pointer),
    read together. Values made from bytes have no address, and gdb can
    tell the variant of an enum only from memory, so a Vec of enums (a
    dynamic type to gdb) is read element by element instead."""
    v = fetched(v)
    elem = v.type.template_argument(0)
    n = scalar(field(v, "len"))
    ptr = nonnull(fields(v, "buf.inner.ptr"))
    if elem.dynamic or not n or not elem.sizeof:
        ptr = ptr.cast(elem.pointer())
        return [ptr[i] for i in range(n)]
    raw = read_bytes(scalar(ptr), n * elem.sizeof)
    return [gdb.Value(raw[i * elem.sizeof:(i + 1) * elem.sizeof], elem) for i in range(n)]


def rust_str(v):
    """A &str."""
    n = scalar(field(v, "length"))
    return read_bytes(scalar(field(v, "data_ptr")), n).decode("utf-8", "replace") if n else ""


def vec_bytes(vec):
    """The bytes of a Vec<u8>."""
    n = scalar(field(vec, "len"))
    return read_bytes(scalar(nonnull(fields(vec, "buf.inner.ptr"))), n) if n else b""


def rust_string(v):
    """A String."""
    return vec_bytes(field(v, "vec")).decode("utf-8", "replace")


def pointer_to(addr, type_name):
    return gdb.Value(addr).cast(kernel_type(type_name).pointer())


# --- Page allocator ------------------------------------------------------------


def pgdat():
    """mm::page_alloc::PgData (kernel/src/mm.rs PGDAT)."""
    return once(kernel_var("kernel::mm::PGDAT"), "the page allocator (kernel::mm::PGDAT)")


class MemMap:
    """The page descriptors, indexed by pfn (mm/src/page.rs MemMap)."""

    def __init__(self):
        mem_map = fetched(field(pgdat(), "mem_map"))
        pages = field(mem_map, "pages")
        self.base = field(pages, "data_ptr")
        self.start_pfn = scalar(field(mem_map, "start_pfn"))
        self.end_pfn = self.start_pfn + scalar(field(pages, "length"))

    def page(self, pfn):
        if not self.start_pfn <= pfn < self.end_pfn:
            raise gdb.GdbError(
                f"mm.py: pfn {pfn:#x} is outside the memory map (pfns {self.start_pfn:#x}-{self.end_pfn - 1:#x})"
            )
        return fetched(self.base[pfn - self.start_pfn])

    def page_list(self, head):
        """The pfns on a PageList, following the lru[0] (next) links."""
        pfn, left = scalar(field(head, "head")), scalar(field(head, "len"))
        out = []
        while pfn != LIST_NIL:
            if len(out) == left:
                raise gdb.GdbError(
                    f"mm.py: page list at {int(head.address):#x} is longer than its length {left}; corrupted?"
                )
            out.append(pfn)
            pfn = scalar(array(field(self.page(pfn), "lru"))[0])
        return out


def zones():
    return array(field(pgdat(), "zones"))


def zone_name(zone):
    variant_name = enum_names("mm::mmzone::ZoneType")[scalar(field(zone, "zone_type"))]
    return ZONE_NAMES[variant_name]


def zone_free_areas(zone):
    return array(field(locked(field(zone, "lock")), "free_area"))


def per_cpu(ref):
    """The per-CPU copies behind a PerCpuRef (mm/src/percpu.rs: CPU n's at
    base + n * stride)."""
    base = nonnull(field(ref, "base"))
    stride, nr = scalar(field(ref, "stride")), scalar(field(ref, "nr"))
    return [gdb.Value(scalar(base) + cpu * stride).cast(base.type).dereference() for cpu in range(nr)]


def buddyinfo_text():
    """mm/src/vmstat.rs Buddyinfo: free blocks per order of every zone with
    memory, summed over migratetypes from the free lists' lengths."""
    lines = []
    for zone in zones():
        if scalar(field(zone, "present_pages")) == 0:
            continue
        line = f"Node 0, zone {zone_name(zone):>8} "
        for area in zone_free_areas(zone):
            line += f"{sum(scalar(field(lst, 'len')) for lst in array(field(area, 'free_list'))):>6} "
        lines.append(line + "\n")
    return "".join(lines)


# --- Slab ---------------------------------------------------------------------


def slab_allocator():
    """mm::slab_common::Slab (kernel/src/slab.rs SLAB)."""
    return once(kernel_var("kernel::slab::SLAB"), "the slab allocator (kernel::slab::SLAB)")


def slab_caches():
    """Every registered KmemCache, in registry order."""
    caches = []
    for entry in array(locked(field(slab_allocator(), "caches"))):
        cache = option(entry)
        if cache is not None:
            caches.append(cache.dereference())
    return caches


def slab_inuse(page):
    """Objects in use in a slab: the low half of the head page's `index`
    (mm/src/slub.rs counters)."""
    return scalar(field(page, "index")) & 0xFFFFFFFF


def cpu_slab_state(cpu):
    """(nr_free, cpu slab pfn or None, cpu partial list) of one CPU's
    mm::slub::KmemCacheCpu: the freelist's counter word holds the objects
    on the CPU freelist in its low 32 bits, `slab` the cpu slab's pfn plus
    one (0 for none), and `lock` guards the cpu partial list."""
    counter = scalar(fields(cpu, "freelist_tid.counter"))
    slab = scalar(field(cpu, "slab"))
    return counter & 0xFFFFFFFF, (slab - 1 if slab else None), locked(field(cpu, "lock"))


def slabinfo_of(cache, mem):
    """mm/src/slub.rs SlubCtx::slabinfo, from memory: (active_objs,
    num_objs, objsize, objperslab, pagesperslab, active_slabs, num_slabs)."""
    objects = scalar(field(cache, "objects"))
    inuse = cpu_free = seen = 0
    for cpu in per_cpu(field(cache, "cpu")):
        nr_free, slab, partial = cpu_slab_state(cpu)
        cpu_free += nr_free
        slabs = ([slab] if slab is not None else []) + mem.page_list(partial)
        for pfn in slabs:
            inuse += slab_inuse(mem.page(pfn))
            seen += 1
    node = locked(field(cache, "node"))
    empty = 0
    for pfn in mem.page_list(field(node, "partial")):
        used = slab_inuse(mem.page(pfn))
        inuse += used
        empty += used == 0
        seen += 1
    nr_slabs = scalar(field(node, "nr_slabs"))
    # Full slabs are on the debug caches' full list or untracked.
    inuse += max(nr_slabs - seen, 0) * objects
    return (inuse - cpu_free, nr_slabs * objects, scalar(field(cache, "size")), objects,
            1 << scalar(field(cache, "order")), nr_slabs - empty, nr_slabs)


def cache_name(cache):
    return rust_str(field(cache, "name"))


# --- Tasks and per-CPU data ---------------------------------------------------


def symbol_address(name):
    return int(kernel_var(name).address) & MASK64


def online_cpus():
    mask = scalar(kernel_var("kernel::arch::x86_64::smp::ONLINE"))
    return [cpu for cpu in range(64) if mask >> cpu & 1]


def per_cpu_offset(cpu):
    """CPU `cpu`'s __per_cpu_offset (kernel/src/percpu.rs PER_CPU_OFFSET;
    0 before the per-CPU areas exist, when the static section is CPU 0's)."""
    return scalar(array(kernel_var("kernel::percpu::PER_CPU_OFFSET"))[cpu])


def this_cpu_offset():
    """The selected CPU's __per_cpu_offset. Its GS base holds it in kernel
    mode and KERNEL_GS_BASE while user code runs (swapgs); the candidate is
    checked against the CPU's own copy of THIS_CPU_OFF, which holds the
    offset itself (kernel/src/percpu.rs)."""
    this_cpu_off = symbol_address("kernel::percpu::THIS_CPU_OFF")
    candidates = [register("gs_base"), register("k_gs_base")]
    if register("cs") & 3:
        candidates.reverse()
    for offset in candidates:
        if offset == 0:
            continue
        try:
            if read_u64((this_cpu_off + offset) & MASK64) == offset:
                return offset
        except gdb.GdbError:
            continue
    if per_cpu_offset(0) == 0:
        return 0
    raise gdb.GdbError(
        f"mm.py: neither GS base {candidates[0]:#x} nor KERNEL_GS_BASE {candidates[1]:#x} points at a per-CPU area"
    )


def current_on(offset):
    """The task pointer in a CPU's copy of CURRENT (an Arc<Task>::into_raw:
    it points at the Task), 0 before the scheduler runs."""
    return read_u64((symbol_address("kernel::sched::CURRENT") + offset) & MASK64)


def current_task():
    ptr = current_on(this_cpu_offset())
    if ptr == 0:
        raise gdb.GdbError("mm.py: no current task on this CPU yet (scheduler not started)")
    return pointer_to(ptr, "kernel::sched::Task").dereference()


def all_tasks():
    """Every live task on TASKS (kernel/src/sched/mod.rs), in creation
    order. The entries are Weak<Task>, pointing at the ArcInner
    { strong, weak, data }; freed tasks (strong 0) and dangling Weak::new
    entries (address usize::MAX) are skipped."""
    tasks = []
    for weak in vec_items(locked(kernel_var("kernel::sched::TASKS"))):
        inner = nonnull(field(weak, "ptr"))
        if scalar(inner) == MASK64 or scalar(field(inner, "strong")) == 0:
            continue
        tasks.append(field(inner, "data"))
    return tasks


def task_comm(task):
    raw = bytes(scalar(b) for b in array(field(locked(field(task, "comm")), "__0")))
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def task_pid(task):
    return scalar(field(task, "pid"))


def rwsem_data(sem):
    """The data behind a kernel RwSem (held or not: the machine is
    stopped)."""
    return fields(sem, "data.value")


def task_mm(task):
    """The task's MmStruct (Process::mm: Mutex<Option<Arc<Mm>>>, the
    MmStruct inside Mm's mmap_lock RwSem), or None for a kernel thread."""
    arc = option(locked(fields(task, "proc.mm")))
    if arc is None:
        return None
    return rwsem_data(fields(nonnull(field(arc, "ptr")), "data.mmap_lock"))


def task_by_pid(pid):
    for task in all_tasks():
        if task_pid(task) == pid:
            return task
    raise gdb.GdbError(f"mm.py: no task with pid {pid}")


def describe_task(task):
    return f"pid {task_pid(task)} ({task_comm(task)})"


# --- Address spaces -------------------------------------------------------------


def vmas(mm):
    """The VMAs of an MmStruct in address order (their AVL tree's nodes,
    whose links are `link`)."""
    return avl_nodes(fields(mm, "vmas.tree"), "link", "VMA")


def avl_nodes(tree, link, what):
    """The nodes of an intrusive AVL tree (mm/src/avl.rs AvlTree) in key
    order: each node's AvlLink, its field `link`, holds children[0] (left)
    and children[1] (right) as Cell<Option<NodePtr>>."""
    count = scalar(field(tree, "len"))

    def node(opt):
        ptr = option(opt)
        return None if ptr is None else nonnull(ptr).dereference()

    def child(vma, side):
        return node(fields(array(fields(vma, link + ".children"))[side], "value.value"))

    out, stack, cur = [], [], node(field(tree, "root"))
    while stack or cur is not None:
        while cur is not None:
            stack.append(cur)
            if len(stack) > count:
                raise gdb.GdbError(f"mm.py: the {what} tree is deeper than its node count; corrupted?")
            cur = child(cur, 0)
        cur = stack.pop()
        out.append(cur)
        if len(out) > count:
            raise gdb.GdbError(f"mm.py: the {what} tree has more nodes than its count {count}; corrupted?")
        cur = child(cur, 1)
    return out


# The VmaFile implementations mm-vmas can name, with the String field
# their VmaFile::name returns.
VMA_FILE_NAME_FIELDS = {"kernel::filemap::vm_file::MappedFile": "name"}

_file_impls = {}


def vma_file(vma):
    """(pointer, vtable) of a VMA's `Option<&'static dyn VmaFile>`, or None
    for anonymous memory."""
    ref = option(fields(vma, "vm_file.value.value"))
    if ref is None:
        return None
    return scalar(field(ref, "pointer")), scalar(field(ref, "vtable"))


def vma_file_name(file):
    """The name VmaFile::name gives: the field it returns, of the type the
    vtable's `name` method belongs to (its symbol reads
    "<TYPE as mm::vma::VmaFile>::name" once gdb's v0 demangling has lost
    its crate hashes, "kernel[bce7e14089437ab2]"): the path a cached
    file was mapped by (MappedFile; the initramfs's programs too, from the
    rootfs)."""
    pointer, vtable = file
    if vtable not in _file_impls:
        # A vtable is drop, size, align, then the trait's methods, `name` first.
        sym = gdb.execute(f"info symbol {read_u64(vtable + 24):#x}", to_string=True)
        sym = re.sub(r"\[[0-9a-f]+\]", "", sym)
        _file_impls[vtable] = next(
            (t for t in VMA_FILE_NAME_FIELDS if f"<{t} as mm::vma::VmaFile>::name" in sym), None)
    impl = _file_impls[vtable]
    if impl is None:
        return f"[file at {pointer:#x} of an unknown VmaFile type]"
    return rust_string(field(pointer_to(pointer, impl), VMA_FILE_NAME_FIELDS[impl]))


def vma_range(vma):
    return scalar(field(vma, "vm_start")), scalar(field(vma, "vm_end"))


def maps_line(mm, vma):
    """One /proc/PID/maps line as mm/src/mmap.rs MmStruct::show_maps
    writes it (Linux show_map_vma)."""
    start, end = vma_range(vma)
    flags = scalar(field(vma, "vm_flags"))
    file = vma_file(vma)
    layout = field(mm, "layout")
    start_brk, brk, start_stack = (scalar(field(layout, n)) for n in ("start_brk", "brk", "start_stack"))
    if file is not None:
        offset, label = scalar(field(vma, "vm_pgoff")) << PAGE_SHIFT, vma_file_name(file)
    elif start <= start_brk and end >= brk and brk > 0:
        offset, label = 0, "[heap]"
    elif start <= start_stack <= end:
        offset, label = 0, "[stack]"
    else:
        offset, label = 0, ""
    perms = "".join(c if flags & bit else "-" for bit, c in ((VM_READ, "r"), (VM_WRITE, "w"), (VM_EXEC, "x")))
    perms += "s" if flags & VM_MAYSHARE else "p"
    head = f"{start:08x}-{end:08x} {perms} {offset:08x} 00:00 0"
    # Linux pads the fixed part to 73 columns before a name.
    return head + " " * max(73 - len(head), 1) + label if label else head


def find_vma(mm, addr):
    for vma in vmas(mm):
        start, end = vma_range(vma)
        if start <= addr < end:
            return vma
    return None


# --- Page tables ----------------------------------------------------------------


def pte_flags(raw, level):
    """The names of the bits set in an entry; a user pte with P clear and
    G set is PROTNONE (mm/src/pgtable.rs X86PteFormat::decode: the global
    bit stands for "present but inaccessible")."""
    protnone = level == "PTE" and raw & (PTE_PRESENT | PTE_GLOBAL) == PTE_GLOBAL
    names = []
    for bit, name in PTE_BITS:
        if not raw >> bit & 1 or (bit == 7 and level == "PGD"):
            continue
        if bit == 7 and level == "PTE":
            names.append("PAT")
        elif bit == 8 and protnone:
            names.append("PROTNONE")
        else:
            names.append(name)
    return names, protnone


def page_walk(addr, cr3):
    """Walks the 4-level tables from root `cr3` for `addr`. Returns (steps,
    leaf): steps are (level, index, entry address, raw entry) down to the
    first non-present entry or leaf; leaf is (phys, page size, protnone)
    or None if not mapped."""
    if not (addr < (1 << 47) or addr >= KERNEL_HALF):
        raise gdb.GdbError(f"mm.py: {addr:#x} is not a canonical address")
    table = cr3 & PTE_ADDR_MASK
    steps = []
    for level, shift in PT_LEVELS:
        index = addr >> shift & 511
        entry = phys_to_virt(table) + index * 8
        raw = read_u64(entry)
        steps.append((level, index, entry, raw))
        size = 1 << shift
        if level == "PTE":
            _, protnone = pte_flags(raw, level)
            if raw & PTE_PRESENT or protnone:
                return steps, ((raw & PTE_ADDR_MASK) | (addr & (size - 1)), size, protnone)
            return steps, None
        if not raw & PTE_PRESENT:
            return steps, None
        if level != "PGD" and raw & PTE_PS:
            return steps, ((raw & PTE_ADDR_MASK & ~(size - 1)) | (addr & (size - 1)), size, False)
        table = raw & PTE_ADDR_MASK
    raise AssertionError("unreachable: the PTE level always returns")


def swap_entry_of(raw):
    """(type, offset) of the swap entry in a non-present pte, or None for
    an empty one (accessed and dirty bits ignored, as Linux's pte_none)."""
    if raw & PTE_PRESENT or not raw & ~PTE_ACCESSED_DIRTY:
        return None
    ones = (1 << 64) - 1
    return raw >> (64 - SWP_TYPE_BITS), ((~raw & ones) << SWP_TYPE_BITS & ones) >> SWP_OFFSET_SHIFT


def swap_area_name(ty):
    """The device of swap area `ty` (kernel/src/swapfile/mod.rs SWAP_INFO),
    or None if the area is not in use."""
    areas = array(kernel_var("kernel::swapfile::SWAP_INFO"))
    if ty >= len(areas):
        return None
    disk = option(fields(locked(field(areas[ty], "state")), "disk"))
    if disk is None:
        return None
    return "/dev/" + rust_string(field(arc_data(disk), "name"))


def swap_cache_lookup(ty, offset):
    """The pfn the swap cache (kernel/src/swap_state.rs SWAP_CACHE) holds
    for the entry, or None."""
    index = option(locked(kernel_var("kernel::swap_state::SWAP_CACHE")))
    if index is None:
        return None
    found = xa_load(index, ty << SWP_KEY_TYPE_SHIFT | offset)
    return found[0][1] if found is not None and found[0][0] == "folio" else None


def swap_pte_text(raw):
    """What the swap entry in a non-present pte names, in one line."""
    ty, offset = swap_entry_of(raw)
    if ty >= MAX_SWAPFILES:
        kind = "read" if ty == MAX_SWAPFILES else "write"
        return f"migration entry ({kind}) of pfn {offset & (1 << SWP_PFN_BITS) - 1:#x}"
    name = swap_area_name(ty) or "an area not in use"
    pfn = swap_cache_lookup(ty, offset)
    cached = f"in the swap cache as pfn {pfn:#x}" if pfn is not None else "not in the swap cache"
    return f"swap entry: area {ty} ({name}), offset {offset} (sector {offset << (PAGE_SHIFT - 9)}); {cached}"


def size_name(size):
    return {1 << 12: "4K", 1 << 21: "2M", 1 << 30: "1G"}[size]


def walk_text(addr, cr3):
    steps, leaf = page_walk(addr, cr3)
    lines = [f"walk of {addr:#x} from cr3 {cr3:#x}"]
    for level, index, entry, raw in steps:
        names, _ = pte_flags(raw, level)
        present = raw & PTE_PRESENT or "PROTNONE" in names
        lines.append(f"{level}[{index:3}] at {entry:#x}: {raw:#018x}  {' '.join(names) if present else 'not present'}")
    last_level, _, _, last_raw = steps[-1]
    if leaf is None and last_level == "PTE" and swap_entry_of(last_raw) is not None:
        lines.append(swap_pte_text(last_raw))
    elif leaf is None:
        lines.append("not mapped")
    else:
        phys, size, protnone = leaf
        note = ", PROTNONE: mapped without access" if protnone else ""
        lines.append(f"phys {phys:#x} (pfn {phys >> PAGE_SHIFT:#x}, {size_name(size)} page{note})")
    return "\n".join(lines) + "\n"


def current_cr3():
    return register("cr3") & PTE_ADDR_MASK


# --- Page descriptors -----------------------------------------------------------


def flag_names(flags):
    names = [name for bit, name in enumerate(PAGE_FLAGS) if flags >> bit & 1]
    unknown = flags & ~((1 << len(PAGE_FLAGS)) - 1)
    return names + ([f"{unknown:#x}"] if unknown else [])


def pfn_of(addr):
    """The pfn behind a kernel or user address: direct-map addresses by
    arithmetic, others through the current page tables."""
    if PAGE_OFFSET <= addr < PAGE_OFFSET + DIRECT_MAP_SIZE:
        return (addr - PAGE_OFFSET) >> PAGE_SHIFT
    _, leaf = page_walk(addr, current_cr3())
    if leaf is None:
        raise gdb.GdbError(f"mm.py: {addr:#x} is not mapped in the current address space")
    return leaf[0] >> PAGE_SHIFT


def free_state(mem, pfn, page):
    """Where a page is free, or None: the head of a buddy block, inside
    one, or on a per-cpu list."""
    if scalar(field(page, "flags")) & PG_BUDDY:
        return f"free in the buddy allocator: head of an order-{scalar(field(page, 'order'))} block"
    for order in range(1, len(zone_free_areas(zones()[0]))):
        head = pfn & ~((1 << order) - 1)
        if head < mem.start_pfn:
            break
        hp = mem.page(head)
        if scalar(field(hp, "flags")) & PG_BUDDY and scalar(field(hp, "order")) >= order:
            return f"free in the buddy allocator: inside the order-{scalar(field(hp, 'order'))} block at pfn {head:#x}"
    if scalar(field(page, "refcount")) != 0:
        return None
    for zone in zones():
        for cpu, pageset in enumerate(per_cpu(field(zone, "pcp"))):
            for index, lst in enumerate(array(field(locked(field(pageset, "__0")), "lists"))):
                order = index // MIGRATE_PCPTYPES
                for head in mem.page_list(lst):
                    if head <= pfn < head + (1 << order):
                        where = f"head of an order-{order} block" if head == pfn else \
                            f"inside the order-{order} block at pfn {head:#x}"
                        return f"free on CPU {cpu}'s per-cpu list of zone {zone_name(zone)}: {where}"
    return None


def slab_text(pfn, page):
    """The state of a slab from its head page (mm/src/slub.rs: `mapping`
    is the KmemCache; `index` holds the objects not on the slab's own
    freelist and the slab's state; `private` is that freelist)."""
    cache = pointer_to(scalar(field(page, "mapping")), "mm::slub::KmemCache").dereference()
    index = scalar(field(page, "index"))
    inuse, state = index & 0xFFFFFFFF, enum_names("mm::slub::SlabState").get(index >> 32)
    where = {"CpuPartial": "on a CPU's partial list", "NodePartial": "on the node's partial list",
             "NodeFull": "on the node's full list"}.get(state, f"in unknown state {index >> 32}")
    if state == "CpuSlab":
        # A cpu slab's free objects are on its CPU's freelist.
        for cpu, cpu_state in enumerate(per_cpu(field(cache, "cpu"))):
            nr_free, slab, _ = cpu_slab_state(cpu_state)
            if slab == pfn:
                inuse -= nr_free
                where = f"CPU {cpu}'s active slab ({nr_free} free on the CPU's freelist)"
                break
        else:
            where = "a cpu slab of no CPU (corrupted?)"
    return (f"slab of cache {cache_name(cache)!r}: {inuse}/{scalar(field(cache, 'objects'))} objects in use, "
            f"{where}, slab freelist {scalar(field(page, 'private')):#x}")


def lru_text(flags):
    """Which LRU list the page is on, as mm/src/swap.rs folio_lru_list
    picks it from the flags, and whether it is mlocked."""
    locked = ", mlocked" if flags & PG_MLOCKED else ""
    if not flags & PG_LRU:
        return f"LRU: on no list (in a per-CPU batch, isolated, or not a user page){locked}"
    if flags & PG_UNEVICTABLE:
        name = "unevictable"
    else:
        name = ("active " if flags & PG_ACTIVE else "inactive ") + ("anon" if flags & PG_SWAPBACKED else "file")
    return f"LRU: on the {name} list{locked}"


def page_text(pfn):
    mem = MemMap()
    page = mem.page(pfn)
    flags = scalar(field(page, "flags"))
    mapping, index = scalar(field(page, "mapping")), scalar(field(page, "index"))
    # Page::mapcount: the stored `_mapcount` is -1 for an unmapped page.
    mapcount = scalar(field(page, "mapcount")) + 1
    zone_index = scalar(field(page, "zone"))
    zone = ZONE_NAMES.get(enum_names("mm::mmzone::ZoneType").get(zone_index), f"{zone_index} (bad)")
    lines = [
        (f"pfn {pfn:#x}  phys {pfn << PAGE_SHIFT:#x}  virt {phys_to_virt(pfn << PAGE_SHIFT):#x}  zone {zone}  "
         f"struct page at {int(page.address):#x}"),
        f"flags {flags:#x}: {' '.join(flag_names(flags)) or '(none)'}",
        (f"refcount {scalar(field(page, 'refcount'))}  mapcount {mapcount}  "
         f"order {scalar(field(page, 'order'))}  private {scalar(field(page, 'private')):#x}"),
    ]
    head = pfn
    if flags & PG_TAIL:
        head = scalar(array(field(page, "lru"))[0])
        lines.append(f"tail page of the compound page at pfn {head:#x}")
    head_page = mem.page(head)
    if scalar(field(head_page, "flags")) & PG_SLAB:
        lines.append(slab_text(head, head_page))
    elif mapping & PAGE_MAPPING_ANON:
        lines.append(f"anonymous: mapping {mapping:#x}, index {index:#x} (the VMA's pgoff + the page's offset in it)")
    elif mapping:
        # mm/src/filemap: a page-cache page's mapping is its cache's MappingId.
        lines += page_cache_text(pfn, flags, mapping, index)
    elif mapcount > 0:
        # mm/src/rmap.rs: a private copy of file data keeps no mapping.
        lines.append(f"file data: page {index:#x} of the file (mapping {mapping:#x})")
    elif mapping or index:
        lines.append(f"mapping {mapping:#x}, index {index:#x}")
    if flags & PG_TABLE:
        lines.append("page-table page")
    if flags & PG_RESERVED:
        lines.append("reserved: never given to the buddy allocator")
    if mapping or mapcount > 0 or flags & PG_LRU:
        lines.append(lru_text(flags))
    if mapcount > 0 and not flags & PG_SLAB:
        kind, found = rmap_candidates(pfn)
        mappers = ", ".join(f"{mm:#x} at {addr:#x}" for mm, addr in found) or "none found"
        lines.append(f"reverse map: {kind}; may be mapped by (address space at address): {mappers}")
    free = free_state(mem, pfn, page)
    if free:
        lines.append(free)
    return "\n".join(lines) + "\n"


# --- Mounts, the dcache and file names --------------------------------------


def arc_data(arc):
    """The value an Arc<T> points at (its ArcInner's `data`), read."""
    return field(fetched(nonnull(field(arc, "ptr")).dereference()), "data")


def btree_items(tree):
    """The (key, value) pairs of a BTreeMap, in key order: an in-order walk
    of alloc's B-tree (LeafNode { keys, vals, len }; an InternalNode is a
    LeafNode followed by `edges`, the child before each key and one after
    the last), as Rust's own gdb pretty-printer walks it."""
    root = option(field(tree, "root"))
    if root is None:
        return []
    out = []
    total = scalar(field(tree, "length"))

    def walk(node, height):
        edges = None
        if height:
            internal = kernel_type(str(node.type.target()).replace("LeafNode", "InternalNode", 1))
            internal = fetched(node.cast(internal.pointer()).dereference())
            leaf, edges = field(internal, "data"), field(internal, "edges")
        else:
            leaf = fetched(node.dereference())
        n = scalar(field(leaf, "len"))
        keys, vals = field(leaf, "keys"), field(leaf, "vals")
        for i in range(n + 1):
            if edges is not None:
                walk(nonnull(fields(edges[i], "value.value")), height - 1)
            if i < n:
                out.append((fields(keys[i], "value.value"), fields(vals[i], "value.value")))
                if len(out) > total:
                    raise gdb.GdbError(f"mm.py: a B-tree map holds more entries than its length {total}; corrupted?")

    walk(nonnull(field(root, "node")), scalar(field(root, "height")))
    return out


def parse_dev(arg):
    """A device number: MAJ:MIN, or the number itself."""
    if ":" in arg:
        major, minor = arg.split(":", 1)
        try:
            return int(major, 0) << 8 | int(minor, 0)
        except ValueError:
            raise gdb.GdbError(f"mm.py: bad device {arg!r}: expected MAJ:MIN") from None
    return parse_int(arg, "device")


def dev_name(dev):
    """A device number as the kernel shows it, "MAJ:MIN"
    (kernel/src/fs/inode.rs SuperBlock::dev_name)."""
    return f"{dev >> 8}:{dev & 0xff}"


class Mounts:
    """The mount table (kernel/src/fs/namespace.rs MOUNTS) and the dcache
    of its superblocks (kernel/src/fs/dcache.rs), for the commands that
    show or take a file's path. What each mount, dentry and name costs to
    read is read only when a question needs it, and once."""

    def __init__(self):
        self.mounts = []
        for arc in vec_items(locked(kernel_var("kernel::fs::namespace::MOUNTS"))):
            mnt = arc_data(arc)
            sb = arc_data(field(mnt, "sb"))
            self.mounts.append({"mnt": mnt, "sb": sb, "dev": scalar(field(sb, "dev"))})

    @staticmethod
    def target(mount):
        """Where the mount is attached, as mounted ("/" for the root)."""
        if "target" not in mount:
            mount["target"] = rust_string(field(mount["mnt"], "target"))
        return mount["target"]

    @staticmethod
    def root(mount):
        """The inode number of the mount's root directory."""
        if "root" not in mount:
            mount["root"] = scalar(field(arc_data(field(mount["mnt"], "root")), "ino"))
        return mount["root"]

    @staticmethod
    def dentries(mount):
        """The superblock's dcache: [(directory ino, name Vec<u8>, inode
        Arc or None for a negative entry)], unread beyond the tree."""
        if "dentries" not in mount:
            # kernel/src/fs/dcache.rs: Dcache { inner: SpinLock<DcacheInner
            # { map: BTreeMap<(Ino, name), Entry { dentry, referenced }> }> }.
            tree = field(locked(fields(mount["sb"], "dcache.inner")), "map")
            mount["dentries"] = [(scalar(field(k, "__0")), field(k, "__1"), option(field(v, "dentry")))
                                 for k, v in btree_items(tree)]
        return mount["dentries"]

    def path_of(self, dev, ino):
        """A path of inode `ino` of device `dev` from the dcache's names, up
        to its mount's root; None if a step is not cached (a lookup the
        dcache has not seen or has dropped: look for it with `ls -i`)."""
        for mount in self.mounts:
            if mount["dev"] != dev:
                continue
            if "parent_of" not in mount:
                mount["parent_of"] = {}
                for dir_ino, name, inode in self.dentries(mount):
                    if inode is not None:
                        mount["parent_of"].setdefault(scalar(field(arc_data(inode), "ino")), (dir_ino, name))
            parent_of = mount["parent_of"]
            parts, cur = [], ino
            while cur != self.root(mount):
                if cur not in parent_of or len(parts) > 255:
                    return None
                cur, name = parent_of[cur]
                parts.insert(0, vec_bytes(name).decode("utf-8", "replace"))
            return self.target(mount).rstrip("/") + "/" + "/".join(parts)
        return None

    def lookup(self, path):
        """(dev, ino) of an absolute path, through the mount table and the
        dcache alone (no file system is asked: gdb cannot call one)."""
        comps = [c for c in path.split("/") if c and c != "."]
        if ".." in comps:
            raise gdb.GdbError(f"mm.py: {path}: give a path without '..'")
        best = None
        for mount in self.mounts:
            target = [c for c in self.target(mount).split("/") if c]
            # The deepest mount on the path; the last mounted of a stack.
            if comps[:len(target)] == target and (best is None or len(target) >= len(best[1])):
                best = (mount, target)
        if best is None:
            raise gdb.GdbError("mm.py: no root mount (too early in boot?)")
        mount, target = best
        cur, walked = self.root(mount), self.target(mount).rstrip("/")
        for name in comps[len(target):]:
            want = name.encode()
            found = [inode for dir_ino, key, inode in self.dentries(mount)
                     if dir_ino == cur and scalar(field(key, "len")) == len(want) and vec_bytes(key) == want]
            if not found:
                raise gdb.GdbError(
                    f"mm.py: {name!r} in {walked or '/'} is not in the dcache of dev {dev_name(mount['dev'])} (not "
                    "looked up lately, or a file system that caches no lookups, as the rootfs); give the inode "
                    "number instead (ls -i)")
            walked = f"{walked}/{name}"
            if found[0] is None:
                raise gdb.GdbError(f"mm.py: {walked} does not exist (a negative dcache entry)")
            cur = scalar(field(arc_data(found[0]), "ino"))
        return mount["dev"], cur


# --- Page cache ---------------------------------------------------------------


def page_cache_mappings():
    """[(id, address of the Mapping)] of every live page cache, by id: the
    table reclaim finds them in (kernel/src/filemap/folio.rs MAPPINGS,
    (id, address of the boxed kernel::filemap::Mapping))."""
    return [(scalar(field(entry, "__0")), scalar(field(entry, "__1")))
            for entry in vec_items(locked(kernel_var("kernel::filemap::folio::MAPPINGS")))]


def mapping_at(addr):
    """The kernel::filemap::Mapping at `addr`, read (its AddressSpace and
    the head of its XArray are inside it)."""
    return fetched(pointer_to(addr, "kernel::filemap::Mapping").dereference())


def find_mapping(mapping_id):
    for mid, addr in page_cache_mappings():
        if mid == mapping_id:
            return mapping_at(addr)
    return None


def mapping_space(mapping):
    """The mm::filemap::AddressSpace behind a Mapping's lock."""
    return locked(field(mapping, "space"))


def mapping_host(mapping):
    """(dev, ino) of the cached file."""
    return scalar(field(mapping, "dev")), scalar(field(mapping, "ino"))


def plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def mark_names(marks):
    return " ".join(name for bit, name in enumerate(XA_MARK_NAMES) if marks >> bit & 1) or "-"


def xa_node(ptr):
    """(shift, present, marks, slot array, is_leaf) of an XaNode."""
    node = fetched(ptr.dereference())
    shift = scalar(field(node, "shift"))
    kind, slots = variant(field(node, "slots"))
    if (kind == "Leaf") != (shift == 0) or shift % XA_CHUNK_SHIFT or shift > XA_CHUNK_SHIFT * (XA_MAX_LEVELS - 1):
        raise gdb.GdbError(f"mm.py: xarray node at {scalar(ptr):#x} is a {kind} at shift {shift}; corrupted?")
    marks = [scalar(m) for m in array(fields(node, "marks.__0"))]
    return shift, scalar(field(node, "present")), marks, field(slots, "__0"), kind == "Leaf"


def slot_marks(marks, offset):
    return sum(1 << m for m in range(len(marks)) if marks[m] >> offset & 1)


def cache_entry(v):
    """("folio", pfn) or ("shadow", word) of a page cache's entry
    (mm::filemap::CacheEntry: a page, or the shadow an evicted page left,
    mm/src/workingset.rs)."""
    kind, payload = variant(v)
    if kind == "Folio":
        return "folio", scalar(field(payload, "__0"))
    if kind == "Shadow":
        return "shadow", scalar(field(payload, "__0"))
    raise gdb.GdbError(f"mm.py: a page-cache entry of kind {kind}; the Rust layout changed")


def xa_head(xa):
    """("empty" | "entry" | "node", payload) of an XArray's head (mm/src/xarray.rs
    Head: an array whose only entry is at index 0 keeps it there, with the
    array's marks as its own)."""
    kind, payload = variant(field(xa, "head"))
    if kind == "Empty":
        return "empty", None
    if kind == "Entry":
        return "entry", cache_entry(field(payload, "__0"))
    return "node", nonnull(field(payload, "__0"))


def xa_entries(xa):
    """[(index, entry, marks)] of a page cache's XArray<CacheEntry> in
    index order, `entry` as cache_entry gives it, from the head or the
    tree of 64-slot nodes (present bitmap, per-mark bitmaps,
    Option<CacheEntry> leaf slots, Option<NodeBox> interior slots)."""
    kind, head = xa_head(xa)
    if kind == "empty":
        return []
    if kind == "entry":
        return [(0, head, scalar(field(xa, "marks")))]
    out = []

    def walk(ptr, base, depth):
        if depth > XA_MAX_LEVELS:
            raise gdb.GdbError("mm.py: an xarray deeper than 11 levels; corrupted?")
        shift, present, marks, slots, leaf = xa_node(ptr)
        for offset in range(64):
            if not present >> offset & 1:
                continue
            index = base | offset << shift
            slot = option(slots[offset])
            if slot is None:
                raise gdb.GdbError(f"mm.py: xarray node at {scalar(ptr):#x}: slot {offset} marked present is empty")
            if leaf:
                out.append((index, cache_entry(slot), slot_marks(marks, offset)))
            else:
                walk(nonnull(slot), index, depth + 1)

    walk(head, 0, 1)
    return out


def xa_load(xa, index):
    """(entry, marks) at `index` of a page cache's XArray, `entry` as
    cache_entry gives it, or None: the descent XArray::load makes."""
    kind, head = xa_head(xa)
    if kind != "node":
        return (head, scalar(field(xa, "marks"))) if kind == "entry" and index == 0 else None
    ptr = head
    for level in range(XA_MAX_LEVELS):
        shift, present, marks, slots, leaf = xa_node(ptr)
        if level == 0 and shift + XA_CHUNK_SHIFT < 64 and index >> (shift + XA_CHUNK_SHIFT):
            return None  # beyond the top node's reach
        offset = index >> shift & (1 << XA_CHUNK_SHIFT) - 1
        slot = option(slots[offset]) if present >> offset & 1 else None
        if slot is None:
            return None
        if leaf:
            return cache_entry(slot), slot_marks(marks, offset)
        ptr = nonnull(slot)
    raise gdb.GdbError("mm.py: an xarray deeper than 11 levels; corrupted?")


def xa_count_marked(xa, mark):
    """Entries with `mark`, descending only where the nodes' mark bitmaps
    say one is below (what makes writeback's search cheap)."""
    kind, head = xa_head(xa)
    if kind != "node":
        return int(kind == "entry" and scalar(field(xa, "marks")) >> mark & 1)

    def count(ptr, depth):
        if depth > XA_MAX_LEVELS:
            raise gdb.GdbError("mm.py: an xarray deeper than 11 levels; corrupted?")
        _, present, marks, slots, leaf = xa_node(ptr)
        bits = marks[mark] & present
        if leaf:
            return bin(bits).count("1")
        return sum(count(nonnull(option(slots[o])), depth + 1) for o in range(64) if bits >> o & 1)

    return count(head, 1)


def cache_state(flags):
    """A page-cache page's state in words: "uptodate dirty ...", with
    "not-uptodate" for a page whose read has not finished (or failed)."""
    words = [name for bit, name in CACHE_STATE_FLAGS if flags & bit]
    if not flags & PG_UPTODATE:
        words.insert(0, "not-uptodate")
    return " ".join(words)


def mapping_title(mapping, names):
    """ "inode INO (dev MAJ:MIN)" and, if the dcache names it, ": PATH"."""
    dev, ino = mapping_host(mapping)
    path = names.path_of(dev, ino)
    return f"inode {ino} (dev {dev_name(dev)})" + (f": {path}" if path else "")


def page_cache_text(pfn, flags, mapping_id, index):
    """What mm-page says of a page-cache page: the file and index, through
    the mapping the page's `mapping` id names, and the page's cache state
    with the marks its entry carries."""
    mapping = find_mapping(mapping_id)
    if mapping is None:
        return [f"page-cache mapping {mapping_id:#x}, index {index}: no live page cache has this id "
                "(being added or removed?)"]
    dev, ino = mapping_host(mapping)
    path = Mounts().path_of(dev, ino)
    lines = [f"page cache of inode {ino} (dev {dev_name(dev)}), index {index}"
             + (f", file {path}" if path else "")]
    entry = xa_load(field(mapping_space(mapping), "i_pages"), index)
    state = f"cache state: {cache_state(flags)}"
    if entry is None:
        lines.append(f"{state}; not in the mapping's index at {index} (being added or removed?)")
    elif entry[0][0] == "shadow":
        lines.append(f"{state}; the mapping's index holds a shadow at {index} (evicted meanwhile?)")
    elif entry[0][1] != pfn:
        lines.append(f"{state}; the mapping's index holds pfn {entry[0][1]:#x} at {index}, not this page")
    else:
        lines.append(f"{state}; xarray marks: {mark_names(entry[1])}")
    return lines


def pagecache_list_text():
    """One line per live page cache: mm-pagecache without arguments."""
    names = Mounts()
    out = [f"{'MAPPING':>10} {'INODE':>8} {'DEV':>6} {'NRPAGES':>8} {'DIRTY':>6} {'I_SIZE':>12}  FILE\n"]
    for mid, addr in page_cache_mappings():
        mapping = mapping_at(addr)
        space = mapping_space(mapping)
        dev, ino = mapping_host(mapping)
        dirty = xa_count_marked(field(space, "i_pages"), XA_MARK_DIRTY)
        out.append(f"{mid:>#10x} {ino:>8} {dev_name(dev):>6} {scalar(field(space, 'nrpages')):>8} {dirty:>6} "
                   f"{scalar(field(mapping, 'i_size')):>12}  {names.path_of(dev, ino) or '-'}\n")
    return "".join(out)


def pagecache_text(mapping, names):
    """mm-pagecache of one file: the mapping, then each cached page."""
    mem = MemMap()
    space = mapping_space(mapping)
    xa = field(space, "i_pages")
    nrpages = scalar(field(space, "nrpages"))
    i_size = scalar(field(mapping, "i_size"))
    every_entry = xa_entries(xa)
    entries = [(index, entry[1], marks) for index, entry, marks in every_entry if entry[0] == "folio"]
    shadows = len(every_entry) - len(entries)
    wb_err = scalar(field(space, "wb_err")) & ERRSEQ_ERRNO_MASK
    out = [f"page cache of {mapping_title(mapping, names)}\n",
           (f"mapping {scalar(field(mapping, 'id')):#x} at {int(mapping.address):#x}: nrpages {nrpages}, "
            f"{f'shadow entries {shadows}, ' if shadows else ''}"
            f"i_size {i_size} ({plural((i_size + PAGE_SIZE - 1) // PAGE_SIZE, 'page')}), "
            f"{'swapbacked, ' if scalar(field(space, 'swapbacked')) else ''}"
            f"marks {mark_names(scalar(field(xa, 'marks')))}"
            f"{f', last write-back error errno {wb_err}' if wb_err else ''}\n")]
    if len(entries) != nrpages:
        out.append(f"the index holds {len(entries)} pages, not nrpages {nrpages}: inconsistent (or changing)\n")
    out.append(f"{'INDEX':>8} {'PFN':>10} {'REF':>4} {'MAP':>4} {'MARKS':<16} FLAGS\n")
    for index, pfn, marks in entries:
        page = mem.page(pfn)
        flags = scalar(field(page, "flags"))
        note = "" if scalar(field(page, "mapping")) == scalar(field(mapping, "id")) and \
            scalar(field(page, "index")) == index else "  (page names another mapping or index!)"
        out.append(f"{index:>8} {pfn:>#10x} {scalar(field(page, 'refcount')):>4} "
                   f"{scalar(field(page, 'mapcount')) + 1:>4} {mark_names(marks):<16} "
                   f"{' '.join(flag_names(flags)) or '(none)'}{note}\n")
    return "".join(out)


# --- Kernel log ---------------------------------------------------------------


def log_text():
    """The bytes still held in LOG_BUF (kernel/src/printk.rs: byte i of
    the output ever written is at data[i % len]), oldest first."""
    buf = kernel_var("kernel::printk::LOG_BUF")
    data = fields(buf, "data.value")
    size = data.type.sizeof
    written = scalar(field(buf, "next"))
    raw = read_bytes(int(data.address), size)
    if written <= size:
        text = raw[:written].decode("utf-8", "replace")
    else:
        oldest = written % size
        text = (raw[oldest:] + raw[:oldest]).decode("utf-8", "replace")
        # The oldest line lost its beginning when the ring wrapped.
        text = text.split("\n", 1)[1] if "\n" in text else ""
    return text


# --- Reports ---------------------------------------------------------------------


def scan_mem_map():
    """Page counts by kind from one read of the whole memory map; field
    offsets come from the debug info of mm::page::Page."""
    mem = MemMap()
    page_type = kernel_type("mm::page::Page")
    offset = {f.name: f.bitpos // 8 for f in page_type.fields()}
    for name in ("flags", "mapcount", "mapping"):
        if name not in offset:
            raise gdb.GdbError(f"mm.py: mm::page::Page has no field {name!r}; the Rust layout changed")
    size = page_type.sizeof
    raw = read_bytes(scalar(mem.base), (mem.end_pfn - mem.start_pfn) * size)
    counts = {"mlocked": 0, "anon": 0, "file_mapped": 0, "table": 0}
    for base in range(0, len(raw), size):
        flags = struct.unpack_from("<I", raw, base + offset["flags"])[0]
        # `_mapcount` is -1 for an unmapped page.
        mapped = struct.unpack_from("<i", raw, base + offset["mapcount"])[0] >= 0
        if flags & PG_MLOCKED:
            counts["mlocked"] += 1
        if flags & PG_TABLE:
            counts["table"] += 1
        if mapped and not flags & (PG_SLAB | PG_TABLE):
            anon = struct.unpack_from("<Q", raw, base + offset["mapping"])[0] & PAGE_MAPPING_ANON
            counts["anon" if anon else "file_mapped"] += 1
    return counts


def direct_map_sizes():
    """Bytes of the direct map mapped with each page size, from the kernel's
    page tables (kernel/src/arch/x86_64/pgtable.rs KERNEL_PGTABLE)."""
    root = scalar(field(once(kernel_var("kernel::arch::x86_64::pgtable::KERNEL_PGTABLE"),
                             "the kernel page tables"), "root"))
    sizes = {1 << 12: 0, 1 << 21: 0, 1 << 30: 0}

    def entries(table):
        return struct.unpack("<512Q", read_bytes(phys_to_virt(table & PTE_ADDR_MASK), PAGE_SIZE))

    first = PAGE_OFFSET >> 39 & 511
    pgd = entries(root)
    for pgd_entry in pgd[first:first + (DIRECT_MAP_SIZE >> 39)]:
        if not pgd_entry & PTE_PRESENT:
            continue
        for pud_entry in entries(pgd_entry):
            if not pud_entry & PTE_PRESENT:
                continue
            if pud_entry & PTE_PS:
                sizes[1 << 30] += 1 << 30
                continue
            for pmd_entry in entries(pud_entry):
                if not pmd_entry & PTE_PRESENT:
                    continue
                if pmd_entry & PTE_PS:
                    sizes[1 << 21] += 1 << 21
                else:
                    sizes[1 << 12] += PAGE_SIZE * sum(e & PTE_PRESENT for e in entries(pmd_entry))
    return sizes


# --- Page faults -----------------------------------------------------------------


def decode_pf_error(code):
    """A page-fault error code in words, e.g. "0x6: not-present write user"."""
    words = [
        "protection" if code & PF_PROT else "not-present",
        "exec" if code & PF_INSTR else "write" if code & PF_WRITE else "read",
        "user" if code & PF_USER else "kernel",
    ]
    words += [w for bit, w in ((PF_RSVD, "reserved-bit"), (PF_PK, "protection-key")) if code & bit]
    return f"{code:#x}: {' '.join(words)}"


def fault_in_progress():
    """(address, error code) of the page fault being handled, from the
    selected frame or the frames that called it: do_user_addr_fault's
    arguments, or trap_dispatch / user_exception's TrapFrame for vector 14
    (with CR2 for the address)."""
    frame = gdb.selected_frame()
    address = None
    while frame is not None:
        name = frame.name() or ""
        if address is None and name.rsplit("::", 1)[-1] == "do_user_addr_fault":
            addr_arg, error_arg = frame.read_var("address"), frame.read_var("error")
            address = register("cr2") if addr_arg.is_optimized_out else scalar(addr_arg)
            if not error_arg.is_optimized_out:
                return address, scalar(error_arg)
        elif name.rsplit("::", 1)[-1] in ("trap_dispatch", "user_exception"):
            trap = frame.read_var("frame")
            if not trap.is_optimized_out and scalar(field(trap, "vector")) == PAGE_FAULT_VECTOR:
                return (register("cr2") if address is None else address), scalar(field(trap, "error_code"))
        frame = frame.older()
    if address is not None:
        raise gdb.GdbError("mm-fault: do_user_addr_fault's error code is optimized out and no trap frame was found")
    raise gdb.GdbError(
        "mm-fault: not stopped in a page-fault handler (do_user_addr_fault, or trap_dispatch for vector 14)"
    )


# --- Commands -------------------------------------------------------------------


class MmCommand(gdb.Command):
    """A command: subclasses set NAME, USAGE and ARGS (the least and most
    arguments) and define run(args). Checks the argument count and the
    target, and turns unreadable memory (say, before the kernel's page
    tables are up) into a one-line error."""

    NAME = USAGE = None
    ARGS = (0, 0)

    def __init__(self):
        super().__init__(self.NAME, gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        args = gdb.string_to_argv(arg)
        if not self.ARGS[0] <= len(args) <= self.ARGS[1]:
            raise gdb.GdbError(f"usage: {self.USAGE}")
        require_target()
        try:
            self.run(args)
        except gdb.MemoryError as e:
            raise gdb.GdbError(f"{self.NAME}: {e} (kernel memory not readable yet?)") from None


class MmPte(MmCommand):
    """Walk the page tables for an address: mm-pte ADDR [CR3]

Prints each level (PGD, PUD, PMD, PTE) with its index, the entry's address
(in the direct map), the raw entry and its flags (P RW US PWT PCD A D PS G
NX; PAT at the pte level; PROTNONE for a pte with P clear and G set), down
to the first non-present entry or a huge-page leaf, then the physical
address or "not mapped". A non-present pte holding a swap entry is
decoded: its area (type and device), offset and sector, and the page the
swap cache holds for it, if any; or a migration entry's pfn. The root is CR3 (default: the current $cr3).
ADDR and CR3 are numbers or gdb expressions."""

    NAME, USAGE, ARGS = "mm-pte", "mm-pte ADDR [CR3]", (1, 2)

    def run(self, args):
        addr = parse_int(args[0], "address")
        cr3 = parse_int(args[1], "CR3") if len(args) == 2 else current_cr3()
        gdb.write(walk_text(addr, cr3))


class MmPage(MmCommand):
    """Decode a page descriptor: mm-page PFN | mm-page VADDR | mm-page -v VADDR

A number below the kernel half (0xffff800000000000) is a pfn; a kernel
address is translated: direct-map addresses arithmetically, others (kernel
image, vmalloc) through the current page tables. -v translates any address
through the current page tables (for user addresses). Prints the flags by
name, refcount, mapcount, order, whether and where the page is free (buddy
block or per-cpu list), compound-page head, mapping and index (anonymous or
not), for slab pages the owning cache with its in-use count, and for a
page-cache page its file ("page cache of inode INO (dev MAJ:MIN), index N"
and the path if the dcache names it) and cache state: the uptodate, dirty,
writeback, locked, readahead and referenced flags and the marks its entry
in the file's XArray carries (dirty, writeback, towrite). For a user page,
the LRU list it is on and whether it is mlocked, and the address spaces
and addresses its reverse map names (mm-rmap checks each pte)."""

    NAME, USAGE, ARGS = "mm-page", "mm-page PFN | mm-page VADDR | mm-page -v VADDR", (1, 2)

    def run(self, args):
        if len(args) == 2 and args[0] != "-v":
            raise gdb.GdbError(f"usage: {self.USAGE}")
        value = parse_int(args[-1], "pfn or address")
        pfn = pfn_of(value) if len(args) == 2 or value >= KERNEL_HALF else value
        gdb.write(page_text(pfn))


def rmap_candidates(pfn):
    """What the page's reverse map says may map it: (kind, [(MmId, address)])
    from its anon_vma's interval tree of AVCs (mm/src/rmap/anon_vma.rs:
    page->mapping is the AnonVma's address | PAGE_MAPPING_ANON, each
    AnonVmaChain's `copy` the VMA's mm, start and page range) or its page
    cache's i_mmap (mm/src/interval_tree.rs IMmapLink copies)."""
    page = MemMap().page(pfn)
    mapping, index = scalar(field(page, "mapping")), scalar(field(page, "index"))
    found = []

    def covers(mm, start, first, last):
        if first <= index <= last:
            found.append((mm, start + ((index - first) << PAGE_SHIFT)))

    if mapping & PAGE_MAPPING_ANON:
        if mapping == PAGE_MAPPING_ANON or scalar(field(page, "mapcount")) + 1 <= 0:
            return "anonymous, not mapped", found
        av = pointer_to(mapping & ~PAGE_MAPPING_ANON, "mm::rmap::anon_vma::AnonVma").dereference()
        for avc in avl_nodes(fields(av, "rb_root.value"), "rb", "anon_vma"):
            copy = fetched(fields(avc, "copy.value.value"))
            covers(scalar(field(copy, "mm")), scalar(field(copy, "start")), scalar(field(copy, "first")),
                   scalar(field(copy, "last")))
        return f"anonymous, anon_vma {mapping & ~PAGE_MAPPING_ANON:#x}, index {index:#x}", found
    if mapping:
        cache = find_mapping(mapping)
        if cache is None:
            return f"mapping {mapping:#x} is no live page cache", found
        tree = field(locked(fields(cache, "i_mmap.tree")), "__0")
        for node in avl_nodes(tree, "link", "i_mmap"):
            covers(scalar(field(node, "mm")), scalar(field(node, "start")), scalar(field(node, "first")),
                   scalar(field(node, "last")))
        return f"page cache {mapping:#x}, index {index:#x}", found
    return "no reverse map (not mapped, or a file copy without a cache)", found


def rmap_text(pfn):
    kind, found = rmap_candidates(pfn)
    tasks = {}
    for task in all_tasks():
        mm = task_mm(task)
        if mm is not None:
            tasks.setdefault(scalar(fields(mm, "pgd.root")), []).append(task)
    lines = [f"pfn {pfn:#x}: {kind}"]
    for root, addr in found:
        steps, leaf = page_walk(addr, root)
        raw = steps[-1][3]
        names = tasks.get(root)
        who = ", ".join(describe_task(t) for t in names) if names else f"address space {root:#x} (no task)"
        if leaf is not None and leaf[0] >> PAGE_SHIFT == pfn:
            flags, _ = pte_flags(raw, "PTE")
            lines.append(f"  {who}: {addr:#x} pte {raw:#018x} {' '.join(flags)}")
        else:
            lines.append(f"  {who}: {addr:#x} covered by a VMA, pte {raw:#018x} does not map the page")
    mapped = sum(1 for line in lines if " pte " in line and "does not map" not in line)
    lines.append(f"{mapped} pte(s) map the page; mapcount {scalar(field(MemMap().page(pfn), 'mapcount')) + 1}")
    return "\n".join(lines) + "\n"


class MmRmap(MmCommand):
    """List every pte mapping a page: mm-rmap PFN | mm-rmap VADDR | mm-rmap -v VADDR

Walks the page's reverse map as the kernel does (mm/src/rmap/walk.rs): an
anonymous page's anon_vma and its interval tree of anon_vma_chains, or a
page-cache page's i_mmap; for each VMA that covers the page's index, the
task(s) whose address space it is, the address, and the pte there (or
that it does not map the page). The last line compares the count with the
page's mapcount. Arguments as mm-page's."""

    NAME, USAGE, ARGS = "mm-rmap", "mm-rmap PFN | mm-rmap VADDR | mm-rmap -v VADDR", (1, 2)

    def run(self, args):
        if len(args) == 2 and args[0] != "-v":
            raise gdb.GdbError(f"usage: {self.USAGE}")
        value = parse_int(args[-1], "pfn or address")
        pfn = pfn_of(value) if len(args) == 2 or value >= KERNEL_HALF else value
        gdb.write(rmap_text(pfn))


class MmPagecache(MmCommand):
    """List page caches and their pages: mm-pagecache [INODE [DEV] | PATH]

Without an argument: one line per live page cache (the MAPPINGS table
reclaim uses): its mapping id, inode, device, pages cached, pages with the
dirty mark, the file's size (i_size) and its path if the dcache names it.

With INODE (a number or gdb expression; DEV as MAJ:MIN or a number when
several devices have that inode cached) or an absolute PATH: the file's
cache (nrpages, i_size, the index's marks, the last write-back error) and
every cached page from a walk of its XArray: index, pfn, refcount,
mapcount, the page's marks (dirty, writeback, towrite) and flags by name.
A PATH is resolved through the mount table and the dcache alone (gdb cannot
ask the file system), so only names a lookup has cached resolve; otherwise
give the inode number (`ls -i` shows it)."""

    NAME, USAGE, ARGS = "mm-pagecache", "mm-pagecache [INODE [DEV] | PATH]", (0, 2)

    def run(self, args):
        if not args:
            gdb.write(pagecache_list_text())
            return
        names = Mounts()
        if args[0].startswith("/"):
            if len(args) == 2:
                raise gdb.GdbError(f"usage: {self.USAGE}")
            dev, ino = names.lookup(args[0])
            what = f"{args[0]} (inode {ino}, dev {dev_name(dev)})"
        else:
            ino = parse_int(args[0], "inode number")
            dev = parse_dev(args[1]) if len(args) == 2 else None
            what = f"inode {ino}" + (f" of dev {dev_name(dev)}" if dev is not None else "")
        mappings = [mapping_at(addr) for _, addr in page_cache_mappings()]
        found = [m for m in mappings if mapping_host(m)[1] == ino and (dev is None or mapping_host(m)[0] == dev)]
        if not found:
            raise gdb.GdbError(f"mm-pagecache: {what} has no page cache (not cached now, or not a regular file "
                               "of a file system with one: only ext2's are)")
        if len(found) > 1:
            devs = ", ".join(dev_name(mapping_host(m)[0]) for m in found)
            raise gdb.GdbError(f"mm-pagecache: inode {ino} is cached on several devices ({devs}); give DEV too")
        gdb.write(pagecache_text(found[0], names))


class MmVmas(MmCommand):
    """List the VMAs of a task: mm-vmas [PID]

Prints the address space of the current task (default) or of task PID in
/proc/PID/maps format, exactly as the kernel's MmStruct::show_maps writes
/proc/self/maps. Fails for a kernel thread or an unknown pid."""

    NAME, USAGE, ARGS = "mm-vmas", "mm-vmas [PID]", (0, 1)

    def run(self, args):
        task = task_by_pid(parse_int(args[0], "pid")) if args else current_task()
        mm = task_mm(task)
        if mm is None:
            raise gdb.GdbError(f"mm-vmas: {describe_task(task)} is a kernel thread: it has no address space")
        gdb.write("".join(maps_line(mm, vma) + "\n" for vma in vmas(mm)))


class MmBuddyinfo(MmCommand):
    """Free blocks per order per zone, as /proc/buddyinfo: mm-buddyinfo

The same text as the kernel's Buddyinfo report (mm/src/vmstat.rs) for the
same state: the buddy free lists only (pages on per-cpu lists are not
counted, as the report does not drain them)."""

    NAME = USAGE = "mm-buddyinfo"

    def run(self, args):
        gdb.write(buddyinfo_text())


class MmSlabinfo(MmCommand):
    """Slab caches, as /proc/slabinfo 2.1: mm-slabinfo

The same text and figures as the kernel's Slabinfo report
(mm/src/slab_common.rs), computed from the caches' per-CPU and node slab
lists as SLUB does."""

    NAME = USAGE = "mm-slabinfo"

    def run(self, args):
        mem = MemMap()
        out = ["slabinfo - version: 2.1\n",
               ("# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> "
                "<batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n")]
        for cache in slab_caches():
            a, n, size, per, pages, act_slabs, slabs = slabinfo_of(cache, mem)
            # mm/src/slab_common.rs Slabinfo; SLUB has no tunables or shared data.
            out.append(f"{cache_name(cache):<17} {a:>6} {n:>6} {size:>6} {per:>4} {pages:>4} : tunables "
                       f"{0:>4} {0:>4} {0:>4} : slabdata {act_slabs:>6} {slabs:>6} {0:>6}\n")
        gdb.write("".join(out))


class MmMeminfo(MmCommand):
    """Memory summary in /proc/meminfo's format: mm-meminfo

The fields the kernel can fill, in kB:
  MemTotal      pages managed by the buddy allocator (totalram_pages)
  MemFree       pages on the buddy free lists (zones' NR_FREE_PAGES;
                per-cpu lists excluded, as in Linux)
  Mlocked       pages flagged MLOCKED
  AnonPages     mapped anonymous pages
  Mapped        mapped pages of file data
  Slab          slab pages of all caches (= SReclaimable + SUnreclaim;
                the kernel's own Slab also counts kmalloc_large pages
                in SUnreclaim, as Linux does, which this scan cannot see)
  SReclaimable  slab pages of SLAB_RECLAIM_ACCOUNT caches
  SUnreclaim    the other slab pages
  KernelStack   kernel stacks allocated for tasks (boot stacks excluded)
  PageTables    page-table pages, the kernel's included
  DirectMap4k/2M/1G  the direct map by page size
Mlocked, AnonPages, Mapped and PageTables come from a scan of the memory
map (about 1.2% of RAM read over the gdb link)."""

    NAME = USAGE = "mm-meminfo"

    def run(self, args):
        kb = PAGE_SIZE // 1024
        total = sum(scalar(field(z, "managed_pages")) for z in zones())
        free = sum(scalar(field(z, "nr_free_pages")) for z in zones())
        counts = scan_mem_map()
        mem = MemMap()
        reclaimable = unreclaimable = 0
        for cache in slab_caches():
            pages = slabinfo_of(cache, mem)[6] << scalar(field(cache, "order"))
            if scalar(field(cache, "flags")) & SLAB_RECLAIM_ACCOUNT:
                reclaimable += pages
            else:
                unreclaimable += pages
        stacks = 0
        for task in all_tasks():
            name, owned = variant(field(task, "stack"))
            if name == "Owned":
                stacks += scalar(field(task, "stack_top")) - scalar(field(owned, "__0"))
        direct = direct_map_sizes()
        rows = [
            ("MemTotal", total * kb), ("MemFree", free * kb), ("Mlocked", counts["mlocked"] * kb),
            ("AnonPages", counts["anon"] * kb), ("Mapped", counts["file_mapped"] * kb),
            ("Slab", (reclaimable + unreclaimable) * kb), ("SReclaimable", reclaimable * kb),
            ("SUnreclaim", unreclaimable * kb), ("KernelStack", stacks // 1024), ("PageTables", counts["table"] * kb),
            ("DirectMap4k", direct[1 << 12] // 1024), ("DirectMap2M", direct[1 << 21] // 1024),
            ("DirectMap1G", direct[1 << 30] // 1024),
        ]
        # Linux show_val_kb: the name padded to 16 columns, the value to 8.
        gdb.write("".join(f"{name + ':':<16}{value:>8} kB\n" for name, value in rows))


class MmTasks(MmCommand):
    """List the tasks: mm-tasks

One line per live task on TASKS: pid, command name, state (R running or
runnable, S/D sleeping, X dead, Z zombie), the CPU whose run queue it is
on, "cpuN" if it is the current task of CPU N now, whether it returns to
user mode, its page-table root (CR3; "kernel" for the kernel's tables) and
the address of its Task. ">" marks the current task of the selected CPU."""

    NAME = USAGE = "mm-tasks"

    def run(self, args):
        running = {}
        for cpu in online_cpus():
            ptr = current_on(per_cpu_offset(cpu))
            if ptr:
                running[ptr] = cpu
        this = current_on(this_cpu_offset())
        states = enum_names("kernel::sched::TaskState")
        out = [f"  {'PID':>5} {'COMM':<16} ST {'CPU':>3} {'NOW':<5} {'MODE':<6} {'CR3':<18} TASK\n"]
        for task in all_tasks():
            addr = int(task.address) & MASK64
            state = TASK_STATE_LETTERS.get(states.get(scalar(field(task, "state"))), "?")
            if scalar(field(arc_data(fields(task, "proc.group")), "zombie")):
                state = "Z"
            now = f"cpu{running[addr]}" if addr in running else "-"
            mode = "user" if scalar(field(task, "user")) else "kernel"
            cr3 = scalar(field(task, "cr3"))
            out.append(f"{'>' if addr == this else ' '} {task_pid(task):>5} {task_comm(task):<16} {state:<2} "
                       f"{scalar(field(task, 'cpu')):>3} {now:<5} {mode:<6} {f'{cr3:#x}' if cr3 else 'kernel':<18} "
                       f"{addr:#x}\n")
        gdb.write("".join(out))


class MmDmesg(MmCommand):
    """Print the kernel log from memory: mm-dmesg [N]

The last N lines (default: all) of the console output kept in LOG_BUF
(kernel/src/printk.rs, the last 128 KiB)."""

    NAME, USAGE, ARGS = "mm-dmesg", "mm-dmesg [N]", (0, 1)

    def run(self, args):
        count = parse_int(args[0], "line count") if args else None
        lines = log_text().splitlines(keepends=True)
        if count is not None:
            lines = lines[-count:] if count else []
        text = "".join(lines)
        gdb.write(text if not text or text.endswith("\n") else text + "\n")


class MmFault(MmCommand):
    """Describe the page fault being handled: mm-fault

When stopped in do_user_addr_fault (or in trap_dispatch for vector 14, or
in a function they called): the faulting address (the `address` argument,
else CR2), the error code decoded (e.g. "0x6: not-present write user"), the
current task, the VMA containing the address in /proc/PID/maps format (or
"no VMA") and the page-table walk of the address in the current address
space (CR3)."""

    NAME = USAGE = "mm-fault"

    def run(self, args):
        address, error = fault_in_progress()
        out = [f"fault at {address:#x}, error {decode_pf_error(error)}\n"]
        task = current_task()
        mm = task_mm(task)
        if mm is None:
            out.append(f"task {describe_task(task)}: a kernel thread, no address space\n")
        else:
            vma = find_vma(mm, address)
            out.append(f"task {describe_task(task)}\n")
            out.append(f"vma  {maps_line(mm, vma) if vma is not None else 'no VMA'}\n")
        out.append(walk_text(address, current_cr3()))
        gdb.write("".join(out))


for command in (MmPte, MmPage, MmRmap, MmPagecache, MmVmas, MmBuddyinfo, MmSlabinfo, MmMeminfo, MmTasks, MmDmesg, MmFault):
    command()
