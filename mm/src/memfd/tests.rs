use super::*;

const ALL: u32 = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;

#[test]
fn a_file_sealed_with_seal_takes_no_seal_and_unknown_bits_are_einval() {
    let mut tmpfs = SealState::new(Seals::SEAL);
    assert_eq!(tmpfs.add_seals(F_SEAL_WRITE), Err(SealError::Sealed));
    assert_eq!(tmpfs.add_seals(0), Err(SealError::Sealed), "not even none");
    assert_eq!(tmpfs.add_seals(0x40), Err(SealError::Invalid), "an unknown bit first");
    assert_eq!(tmpfs.seals(), Seals::SEAL);
    let mut memfd = SealState::new(Seals::empty());
    assert_eq!(memfd.add_seals(0x20), Err(SealError::Invalid), "F_SEAL_EXEC is Linux 6.3's");
    assert_eq!(memfd.add_seals(F_SEAL_SHRINK), Ok(()));
    assert_eq!(memfd.add_seals(F_SEAL_GROW | F_SEAL_SEAL), Ok(()));
    assert_eq!(memfd.seals().bits(), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, "seals accumulate");
    assert_eq!(memfd.add_seals(F_SEAL_WRITE), Err(SealError::Sealed));
    assert_eq!(SealState::new(Seals::empty()).add_seals(ALL), Ok(()));
    assert_eq!(Errno::from(SealError::Sealed), Errno::EPERM);
    assert_eq!(Errno::from(SealError::Busy), Errno::EBUSY);
    assert_eq!(Errno::from(SealError::Invalid), Errno::EINVAL);
}

#[test]
fn size_seals_refuse_truncation_and_writes_past_the_end_only() {
    let mut s = SealState::new(Seals::empty());
    assert_eq!(s.check_resize(10, 5), Ok(()));
    assert_eq!(s.check_write(8, 4, 10), Ok(()));
    s.add_seals(F_SEAL_SHRINK).unwrap();
    assert_eq!(s.check_resize(10, 5), Err(SealError::Sealed));
    assert_eq!(s.check_resize(10, 20), Ok(()));
    assert_eq!(s.check_resize(10, 10), Ok(()), "the same size is no change");
    s.add_seals(F_SEAL_GROW).unwrap();
    assert_eq!(s.check_resize(10, 20), Err(SealError::Sealed));
    assert_eq!(s.check_write(6, 4, 10), Ok(()), "a write inside the file");
    assert_eq!(s.check_write(8, 4, 10), Err(SealError::Sealed), "a write that would grow it");
    assert_eq!(s.check_write(u64::MAX, 4, 10), Err(SealError::Sealed), "no overflow");
    assert_eq!(s.check_punch_hole(), Ok(()));
}

#[test]
fn write_seals_refuse_writes_hole_punching_and_shared_writable_mappings() {
    for seal in [F_SEAL_WRITE, F_SEAL_FUTURE_WRITE] {
        let mut s = SealState::new(Seals::empty());
        s.add_seals(seal).unwrap();
        assert_eq!(s.check_write(0, 1, 10), Err(SealError::Sealed));
        assert_eq!(s.check_punch_hole(), Err(SealError::Sealed));
        assert_eq!(s.mmap(true, true, true), Err(SealError::Sealed));
        assert_eq!(
            s.mmap(true, true, false),
            Ok(MmapGrant { may_write: false, counted: false }),
            "a reader's writable mapping is mmap's EACCES, not a seal's EPERM"
        );
        // Read-only shared: allowed, but never writable later; private:
        // copy-on-write as usual.
        assert_eq!(s.mmap(true, false, true), Ok(MmapGrant { may_write: false, counted: false }));
        assert_eq!(s.mmap(false, true, true), Ok(MmapGrant { may_write: true, counted: false }));
        assert_eq!(s.add_seals(F_SEAL_WRITE), Ok(()), "no writable mapping was counted");
    }
}

#[test]
fn f_seal_write_waits_for_every_shared_mapping_that_may_write_to_go() {
    let mut s = SealState::new(Seals::empty());
    let rw = s.mmap(true, true, true).unwrap();
    // A read-only shared mapping by a writer may still become writable.
    let ro = s.mmap(true, false, true).unwrap();
    assert_eq!((rw.counted, ro.counted), (true, true));
    assert_eq!(s.mmap(true, false, false), Ok(MmapGrant { may_write: false, counted: false }), "a reader's");
    assert_eq!(s.mmap(false, true, true).map(|g| g.counted), Ok(false), "a private one");
    assert_eq!(s.add_seals(F_SEAL_WRITE), Err(SealError::Busy));
    s.unmap_writable();
    assert_eq!(s.add_seals(F_SEAL_WRITE | F_SEAL_SHRINK), Err(SealError::Busy));
    assert_eq!(s.seals(), Seals::empty(), "a refused call adds nothing");
    // F_SEAL_FUTURE_WRITE leaves the existing mapping writing.
    assert_eq!(s.add_seals(F_SEAL_FUTURE_WRITE), Ok(()));
    s.unmap_writable();
    assert_eq!(s.add_seals(F_SEAL_WRITE), Ok(()));
    assert_eq!(s.add_seals(F_SEAL_WRITE), Ok(()), "adding a seal it has is nothing");
}
