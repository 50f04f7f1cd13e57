# Kernel-aware gdb commands for the kernel's memory management, in the
# spirit of Linux's scripts/gdb (lx-*): page-table walks, page descriptors,
# address spaces, allocator reports, tasks, the kernel log and page faults,
# read from the memory of a stopped machine.
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
PTE_BITS = [(0, "P"), (1, "RW"), (2, "US"), (3, "PWT"), (4, "PCD"), (5, "A"), (6, "D"), (7, "PS"), (8, "G"), (63, "NX")]
# (name, shift of the index) of the four levels.
PT_LEVELS = [("PGD", 39), ("PUD", 30), ("PMD", 21), ("PTE", 12)]

# mm/src/page_flags.rs PageFlags.
PAGE_FLAGS = [
    "LOCKED", "WRITEBACK", "REFERENCED", "UPTODATE", "DIRTY", "LRU", "HEAD", "ACTIVE", "WORKINGSET", "SWAPCACHE",
    "RESERVED", "PRIVATE", "RECLAIM", "SWAPBACKED", "UNEVICTABLE", "MLOCKED", "BUDDY", "SLAB", "TABLE", "TAIL",
]
PG_RESERVED = 1 << PAGE_FLAGS.index("RESERVED")
PG_MLOCKED = 1 << PAGE_FLAGS.index("MLOCKED")
PG_BUDDY = 1 << PAGE_FLAGS.index("BUDDY")
PG_SLAB = 1 << PAGE_FLAGS.index("SLAB")
PG_TABLE = 1 << PAGE_FLAGS.index("TABLE")
PG_TAIL = 1 << PAGE_FLAGS.index("TAIL")
# mm/src/rmap.rs PAGE_MAPPING_ANON.
PAGE_MAPPING_ANON = 1
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


def vec_items(v):
    """The elements of a Vec<T> (its RawVec keeps an untyped pointer)."""
    elem = v.type.template_argument(0)
    ptr = nonnull(fields(v, "buf.inner.ptr")).cast(elem.pointer())
    return [ptr[i] for i in range(scalar(field(v, "len")))]


def rust_str(v):
    """A &str."""
    n = scalar(field(v, "length"))
    return read_bytes(scalar(field(v, "data_ptr")), n).decode("utf-8", "replace") if n else ""


def rust_string(v):
    """A String."""
    vec = field(v, "vec")
    n = scalar(field(vec, "len"))
    return read_bytes(scalar(nonnull(fields(vec, "buf.inner.ptr"))), n).decode("utf-8", "replace") if n else ""


def pointer_to(addr, type_name):
    return gdb.Value(addr).cast(kernel_type(type_name).pointer())


# --- Page allocator ------------------------------------------------------------


def pgdat():
    """mm::page_alloc::PgData (kernel/src/mm.rs PGDAT)."""
    return once(kernel_var("kernel::mm::PGDAT"), "the page allocator (kernel::mm::PGDAT)")


class MemMap:
    """The page descriptors, indexed by pfn (mm/src/page.rs MemMap)."""

    def __init__(self):
        mem_map = field(pgdat(), "mem_map")
        pages = field(mem_map, "pages")
        self.base = field(pages, "data_ptr")
        self.start_pfn = scalar(field(mem_map, "start_pfn"))
        self.end_pfn = self.start_pfn + scalar(field(pages, "length"))

    def page(self, pfn):
        if not self.start_pfn <= pfn < self.end_pfn:
            raise gdb.GdbError(
                f"mm.py: pfn {pfn:#x} is outside the memory map (pfns {self.start_pfn:#x}-{self.end_pfn - 1:#x})"
            )
        return self.base[pfn - self.start_pfn]

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


def slabinfo_of(cache, mem):
    """mm/src/slub.rs SlubCtx::slabinfo, from memory: (active_objs,
    num_objs, objsize, objperslab, pagesperslab, active_slabs, num_slabs)."""
    objects = scalar(field(cache, "objects"))
    inuse = cpu_free = seen = 0
    for cpu in per_cpu(field(cache, "cpu")):
        c = locked(cpu)
        cpu_free += scalar(field(c, "nr_free"))
        slab = option(field(c, "slab"))
        slabs = ([scalar(slab)] if slab is not None else []) + mem.page_list(field(c, "partial"))
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
    """The VMAs of an MmStruct in address order: an in-order walk of the
    intrusive AVL tree (mm/src/avl.rs: each Vma's `link` holds
    children[0] (left) and children[1] (right) as Option<NodePtr>)."""
    tree = fields(mm, "vmas.tree")
    count = scalar(field(tree, "len"))

    def node(opt):
        ptr = option(opt)
        return None if ptr is None else nonnull(ptr).dereference()

    def child(vma, side):
        return node(fields(array(fields(vma, "link.children"))[side], "value.value"))

    out, stack, cur = [], [], node(field(tree, "root"))
    while stack or cur is not None:
        while cur is not None:
            stack.append(cur)
            if len(stack) > count:
                raise gdb.GdbError("mm.py: the VMA tree is deeper than its node count; corrupted?")
            cur = child(cur, 0)
        cur = stack.pop()
        out.append(cur)
        if len(out) > count:
            raise gdb.GdbError(f"mm.py: the VMA tree has more nodes than its count {count}; corrupted?")
        cur = child(cur, 1)
    return out


_file_impls = {}


def vma_file(vma):
    """(pointer, vtable) of a VMA's `Option<&'static dyn VmaFile>`, or None
    for anonymous memory."""
    ref = option(fields(vma, "vm_file.value.value"))
    if ref is None:
        return None
    return scalar(field(ref, "pointer")), scalar(field(ref, "vtable"))


def vma_file_name(file):
    """The name VmaFile::name gives. Every implementation in the kernel is
    kernel::fs::file::RamFile, whose name is its `path`; the vtable's
    methods tell (their symbols read "<...RamFile as ...VmaFile>::name")."""
    pointer, vtable = file
    if vtable not in _file_impls:
        # A vtable is drop, size, align, then the trait's methods (three).
        methods = struct.unpack("<3Q", read_bytes(vtable + 24, 24))
        syms = [gdb.execute(f"info symbol {m:#x}", to_string=True) for m in methods]
        _file_impls[vtable] = all("::fs::file::RamFile as " in s and "::vma::VmaFile>::" in s for s in syms)
    if not _file_impls[vtable]:
        return f"[file at {pointer:#x} of an unknown VmaFile type]"
    return rust_string(field(pointer_to(pointer, "kernel::fs::file::RamFile"), "path"))


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


def size_name(size):
    return {1 << 12: "4K", 1 << 21: "2M", 1 << 30: "1G"}[size]


def walk_text(addr, cr3):
    steps, leaf = page_walk(addr, cr3)
    lines = [f"walk of {addr:#x} from cr3 {cr3:#x}"]
    for level, index, entry, raw in steps:
        names, _ = pte_flags(raw, level)
        present = raw & PTE_PRESENT or "PROTNONE" in names
        lines.append(f"{level}[{index:3}] at {entry:#x}: {raw:#018x}  {' '.join(names) if present else 'not present'}")
    if leaf is None:
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
        for cpu, cpu_mutex in enumerate(per_cpu(field(cache, "cpu"))):
            c = locked(cpu_mutex)
            slab = option(field(c, "slab"))
            if slab is not None and scalar(slab) == pfn:
                nr_free = scalar(field(c, "nr_free"))
                inuse -= nr_free
                where = f"CPU {cpu}'s active slab ({nr_free} free on the CPU's freelist)"
                break
        else:
            where = "a cpu slab of no CPU (corrupted?)"
    return (f"slab of cache {cache_name(cache)!r}: {inuse}/{scalar(field(cache, 'objects'))} objects in use, "
            f"{where}, slab freelist {scalar(field(page, 'private')):#x}")


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
    elif mapcount > 0:
        # mm/src/rmap.rs: a private copy of file data keeps no mapping.
        lines.append(f"file data: page {index:#x} of the file (mapping {mapping:#x})")
    elif mapping or index:
        lines.append(f"mapping {mapping:#x}, index {index:#x}")
    if flags & PG_TABLE:
        lines.append("page-table page")
    if flags & PG_RESERVED:
        lines.append("reserved: never given to the buddy allocator")
    free = free_state(mem, pfn, page)
    if free:
        lines.append(free)
    return "\n".join(lines) + "\n"


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
address or "not mapped". The root is CR3 (default: the current $cr3).
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
not), and for slab pages the owning cache with its in-use count."""

    NAME, USAGE, ARGS = "mm-page", "mm-page PFN | mm-page VADDR | mm-page -v VADDR", (1, 2)

    def run(self, args):
        if len(args) == 2 and args[0] != "-v":
            raise gdb.GdbError(f"usage: {self.USAGE}")
        value = parse_int(args[-1], "pfn or address")
        pfn = pfn_of(value) if len(args) == 2 or value >= KERNEL_HALF else value
        gdb.write(page_text(pfn))


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
  Slab          slab pages of all caches (= SReclaimable + SUnreclaim)
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
            if scalar(fields(task, "proc.zombie")):
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


for command in (MmPte, MmPage, MmVmas, MmBuddyinfo, MmSlabinfo, MmMeminfo, MmTasks, MmDmesg, MmFault):
    command()
