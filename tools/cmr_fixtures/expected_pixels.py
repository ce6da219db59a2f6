#!/usr/bin/env python3
"""Independent expected pixel values for the CMR reader tests (tests/data/cmr-*.test.ts).

Reads the real test files of Debian's python3-pydicom / python3-nibabel (fetched by
scripts/fetch-test-files.sh) with pydicom 2.3 (numpy, RLE and Pillow handlers) and nibabel, applies the
rules our readers document, and writes tests/data/fixtures/cmr-expected.json with, per file: the cine
shape (frames, height, width) and statistics of the float values in (t, y, x) order: sum, sum of
squares, sum of v * (i % 97), and the values at 16 fixed positions.

Rules reproduced (docs/DATA.md): stored values masked to BitsStored and sign-extended when
PixelRepresentation = 1; RescaleSlope/Intercept; colour -> BT.601 luma 0.299 R + 0.587 G + 0.114 B
(YBR_FULL / YBR_FULL_422 stored uncompressed: the Y channel); NIfTI: scl_slope/scl_inter (nibabel
get_fdata), 4-D slice z, output (t, y, x) = data[x, y, z, t].

Run: /usr/bin/python3 tools/cmr_fixtures/expected_pixels.py
"""
import json
import os
import sys

import numpy as np
import pydicom
import nibabel

ROOT = os.path.join(os.path.dirname(__file__), '..', '..')
FILES = os.path.join(ROOT, '.cache', 'debian-test-files')
OUT = os.path.join(ROOT, 'tests', 'data', 'fixtures', 'cmr-expected.json')

# Files pydicom decodes itself (numpy/RLE handlers, Pillow for JPEG 2000).
DICOM = [
    'pydicom/MR_small.dcm', 'pydicom/MR_small_RLE.dcm', 'pydicom/MR_small_bigendian.dcm', 'pydicom/MR_small_expb.dcm',
    'pydicom/MR_small_implicit.dcm', 'pydicom/MR_small_padded.dcm', 'pydicom/MR_small_jp2klossless.dcm',
    'pydicom/CT_small.dcm', 'pydicom/JPEG2000.dcm', 'pydicom/693_J2KI.dcm',
    'pydicom/rtdose.dcm', 'pydicom/rtdose_rle.dcm', 'pydicom/rtdose_expb.dcm', 'pydicom/rtdose_1frame.dcm',
    'pydicom/SC_rgb_rle.dcm', 'pydicom/SC_rgb_rle_16bit.dcm', 'pydicom/SC_rgb_rle_2frame.dcm', 'pydicom/SC_rgb_rle_32bit_2frame.dcm',
    'pydicom/SC_rgb_small_odd.dcm', 'pydicom/ExplVR_BigEnd.dcm', 'pydicom/SC_ybr_full_422_uncompressed.dcm',
    'pydicom/image_dfl.dcm',
    'nibabel/0.dcm', 'nibabel/1.dcm',
]
NIFTI = [('nibabel/example_nifti2.nii.gz', None), ('nibabel/standard.nii.gz', None), ('nibabel/example4d.nii.gz', None), ('nibabel/example4d.nii.gz', 0), ('nibabel/functional.nii', None), ('nibabel/anatomical.nii', None)]


def stats(cine):
    flat = cine.astype(np.float64).ravel()
    idx = np.arange(flat.size)
    positions = [int(round(k * (flat.size - 1) / 15)) for k in range(16)]
    return {
        'shape': list(cine.shape),
        'sum': float(flat.sum()),
        'sumsq': float((flat * flat).sum()),
        'weighted': float((flat * (idx % 97)).sum()),
        'samples': [[p, float(flat[p])] for p in positions],
    }


def dicom_cine(path):
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array.astype(np.int64)
    frames = int(getattr(ds, 'NumberOfFrames', 1) or 1)
    spp = int(ds.SamplesPerPixel)
    if frames == 1:
        arr = arr[None]
    bits_alloc, bits_stored = int(ds.BitsAllocated), int(ds.BitsStored)
    if bits_stored < bits_alloc:
        arr = arr % (1 << bits_stored)
        if int(ds.PixelRepresentation) == 1:
            arr = np.where(arr >= (1 << (bits_stored - 1)), arr - (1 << bits_stored), arr)
    arr = arr.astype(np.float64)
    photometric = ds.PhotometricInterpretation
    if spp == 3:
        if photometric.startswith('YBR') and ds.file_meta.TransferSyntaxUID in ('1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.2', '1.2.840.10008.1.2.5'):
            arr = arr[..., 0]
        else:
            arr = 0.299 * arr[..., 0] + 0.587 * arr[..., 1] + 0.114 * arr[..., 2]
    slope = float(getattr(ds, 'RescaleSlope', 1) or 1)
    intercept = float(getattr(ds, 'RescaleIntercept', 0) or 0)
    if spp == 1:
        arr = arr * slope + intercept
    if photometric == 'MONOCHROME1':
        arr = arr.max() + arr.min() - arr
    return arr


def nifti_cine(path, z):
    img = nibabel.load(path)
    data = np.asarray(img.get_fdata(dtype=np.float64))
    if data.ndim == 4:
        z = data.shape[2] // 2 if z is None else z
        data = data[:, :, z, :]
    return np.transpose(data, (2, 1, 0))


def main():
    out = {'generator': 'tools/cmr_fixtures/expected_pixels.py', 'pydicom': pydicom.__version__, 'nibabel': nibabel.__version__, 'dicom': {}, 'nifti': {}}
    for name in DICOM:
        out['dicom'][name] = stats(dicom_cine(os.path.join(FILES, name)))
    for name, z in NIFTI:
        key = name if z is None else f'{name}#slice={z}'
        out['nifti'][key] = stats(nifti_cine(os.path.join(FILES, name), z))
    with open(OUT, 'w') as f:
        json.dump(out, f, indent=1)
        f.write('\n')
    print(f'wrote {OUT}', file=sys.stderr)


if __name__ == '__main__':
    main()
