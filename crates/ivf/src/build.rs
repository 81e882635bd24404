//! Writing a new index: metapage and list pages first, then each list's
//! chain as its vectors arrive in any order.
//!
//! Every list fills page images in memory and keeps its full ones. At most
//! `budget_pages` images are held: past that, the list holding the most
//! writes its full images out as consecutive pages (or, with none full,
//! its partly filled one), so memory stays bounded whatever the number of
//! lists. `finish` writes the rest list by list. A list's pages thus sit
//! together in the file (and in shared buffers after the build), in runs
//! as long as the budget allows: a scan reads them in order, which costs
//! measurably less than pages interleaved with other lists' (sequential
//! reads from disk, and fewer cache and TLB misses from buffers).

use crate::format::{
    init_data_page, init_list_page, item_len, item_tuple, list_raw, list_tuple, set_list_blocks,
    set_next_block, Meta, INVALID_BLOCK,
};
use crate::{Metric, Storage};
use pagestore::{page, BlockNumber, Corrupt, PageStore, Tid, PAGE_SIZE};

struct ListState {
    first: BlockNumber,
    last: BlockNumber,
    /// Full images waiting, in chain order.
    full: Vec<Box<[u8]>>,
    /// The image being filled.
    image: Option<Box<[u8]>>,
}

pub struct ListWriter<'s, S: PageStore> {
    store: &'s S,
    meta: Meta,
    lists: Vec<ListState>,
    images: usize,
    budget_pages: usize,
    tuples: u64,
}

impl<'s, S: PageStore> ListWriter<'s, S> {
    /// Writes the metapage and list pages (centers, empty chains) into an
    /// empty store.
    pub fn begin(
        store: &'s S,
        dims: usize,
        metric: Metric,
        storage: Storage,
        centers: &[f32],
        budget_bytes: usize,
    ) -> Result<Self, String> {
        assert_eq!(store.nblocks(), 0, "a new index needs an empty store");
        let most = crate::format::max_dims_for(storage.element_size());
        if dims == 0 || dims > most {
            return Err(format!(
                "vectors of {dims} dimensions do not fit on a page (at most {most})"
            ));
        }
        let lists = centers.len() / dims;
        assert!(lists > 0 && centers.len() == lists * dims);
        let mut meta = Meta {
            dims: dims as u32,
            lists: lists as u32,
            metric,
            storage,
            list_pages: 0,
            last_vacuum: Default::default(),
        };
        meta.list_pages = meta.lists.div_ceil(meta.lists_per_page());
        store.extend(|_, p| meta.store(p));
        let per = meta.lists_per_page() as usize;
        for chunk in centers.chunks(per * dims) {
            store.extend(|b, p| {
                init_list_page(p);
                for c in chunk.chunks_exact(dims) {
                    let tuple = list_tuple(INVALID_BLOCK, INVALID_BLOCK, c, storage);
                    let t = page::add_item(p, &tuple).expect("lists_per_page fit a page");
                    debug_assert!(b >= 1 && t >= 1);
                }
            });
        }
        Ok(ListWriter {
            store,
            meta,
            lists: (0..lists)
                .map(|_| ListState {
                    first: INVALID_BLOCK,
                    last: INVALID_BLOCK,
                    full: Vec::new(),
                    image: None,
                })
                .collect(),
            images: 0,
            budget_pages: (budget_bytes / PAGE_SIZE).max(16),
            tuples: 0,
        })
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn tuples(&self) -> u64 {
        self.tuples
    }

    /// Adds a vector (already in the metric's stored form) to list `list`.
    pub fn push(&mut self, list: usize, heap: Tid, vector: &[f32]) {
        debug_assert_eq!(vector.len(), self.meta.dims as usize);
        let item = item_tuple(
            heap,
            self.meta.metric.element_of_words(vector),
            self.meta.storage,
        );
        loop {
            if self.lists[list].image.is_none() {
                if self.images >= self.budget_pages {
                    self.flush_largest();
                }
                let mut img = vec![0u8; PAGE_SIZE].into_boxed_slice();
                init_data_page(&mut img);
                self.lists[list].image = Some(img);
                self.images += 1;
            }
            let st = &mut self.lists[list];
            let img = st.image.as_mut().expect("an image");
            if page::add_item(img, &item).is_some() {
                self.tuples += 1;
                return;
            }
            let full = st.image.take().expect("an image");
            st.full.push(full);
        }
    }

    /// Writes out the full images of the list holding the most, or when no
    /// list has a full one, the fullest partly filled image.
    fn flush_largest(&mut self) {
        let most = (0..self.lists.len()).max_by_key(|i| self.lists[*i].full.len());
        if let Some(i) = most.filter(|i| !self.lists[*i].full.is_empty()) {
            for img in std::mem::take(&mut self.lists[i].full) {
                self.append(i, &img);
            }
            return;
        }
        let fullest = (0..self.lists.len())
            .filter(|i| self.lists[*i].image.is_some())
            .max_by_key(|i| {
                let img = self.lists[*i].image.as_ref().expect("an image");
                page::max_offset(img).unwrap_or(0)
            });
        if let Some(i) = fullest {
            let img = self.lists[i].image.take().expect("an image");
            self.append(i, &img);
        }
    }

    /// Adds an image of list `i` as a page at the end of its chain.
    fn append(&mut self, i: usize, img: &[u8]) {
        self.images -= 1;
        let block = self.store.extend(|b, p| {
            p.copy_from_slice(img);
            b
        });
        let st = &mut self.lists[i];
        if st.last == INVALID_BLOCK {
            st.first = block;
        } else {
            self.store
                .write(st.last, |p| set_next_block(p, block))
                .expect("a page this writer made");
        }
        st.last = block;
    }

    /// Writes the remaining images and records each list's chain.
    pub fn finish(mut self) -> Result<Meta, Corrupt> {
        for i in 0..self.lists.len() {
            let mut images = std::mem::take(&mut self.lists[i].full);
            images.extend(self.lists[i].image.take());
            for img in images {
                if page::max_offset(&img).unwrap_or(0) > 0 {
                    self.append(i, &img);
                } else {
                    self.images -= 1;
                }
            }
        }
        let bytes = self.meta.vector_bytes();
        for (i, st) in self.lists.iter().enumerate() {
            let t = self.meta.list_tid(i as u32);
            self.store.write(t.block, |p| -> Result<(), Corrupt> {
                list_raw(p, t, bytes)?;
                set_list_blocks(page::item_mut(p, t.offset)?, st.first, st.last);
                Ok(())
            })?;
        }
        Ok(self.meta)
    }
}

/// Items whose vectors take `vector_bytes` per data page.
pub fn items_per_page(vector_bytes: usize) -> usize {
    (PAGE_SIZE - page::HEADER_SIZE - 8) / (page::maxalign(item_len(vector_bytes)) + 4)
}
